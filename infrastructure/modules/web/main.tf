# The reader's page on AWS: its static files (web/) in a private S3 bucket that only this distribution
# may read (origin access control), and one CloudFront distribution in front of both the bucket and
# the ALB, so the page and the API share an origin (no CORS) and one TLS name:
#
#   default behaviour (/, /web/*, anything else)  -> S3 (cached; index.html is published no-cache)
#   each path pattern of every service-forwarding  -> the ALB (never cached, every method, all viewer
#   rule in routes.json, in its order                 headers but Host, Authorization included, and
#                                                     query strings; HTTPS only)
#
# Every response carries the security headers (HSTS, nosniff, DENY framing, a strict referrer policy
# and a CSP without inline scripts). The WAF at this edge is a CLOUDFRONT-scope web ACL (modules/waf
# created in us-east-1, passed in as web_acl_arn); the ALB behind only admits CloudFront's addresses and
# requests carrying the secret origin header (modules/alb, modules/waf).
terraform {
  required_providers {
    aws = {
      source                = "hashicorp/aws"
      configuration_aliases = [aws.us_east_1]
    }
  }
}

data "aws_caller_identity" "this" {}

data "aws_region" "this" {}

locals {
  # The API behaviours: every service-forwarding rule's patterns, lowest priority first, so one
  # definition serves HAProxy, the ALB and CloudFront. Fixed-response rules (internal endpoints) stay
  # the ALB's business (their paths are under /recommendations, whose behaviour reaches the ALB);
  # static rules ("static": "web") are the page, which the default behaviour serves from S3.
  forwarding = { for r in var.routes.rules : format("%06d", r.priority) => r if contains(keys(var.services), try(r.service, "")) }
  api_paths  = distinct(flatten([for key in sort(keys(local.forwarding)) : local.forwarding[key].path_patterns]))

  # AWS managed policies, by their documented IDs (the same in every account).
  caching_optimized             = "658327ea-f89d-4fab-a63d-7e88639e58f6"
  caching_disabled              = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  all_viewer_except_host_header = "b689b0a8-53d0-40ab-baf2-68738e2966ac"

  # Scripts, styles and fonts only from the page's own files (no inline script, no eval); covers from
  # Open Library, which redirects most cover images to archive.org's servers (a redirected image must
  # match img-src too); API calls to this origin and sign-in at the user pool's endpoint.
  csp = join("; ", [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: https://covers.openlibrary.org https://archive.org https://*.archive.org",
    "connect-src 'self' https://cognito-idp.${var.region}.amazonaws.com",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ])

  issue_cert  = var.domain_name != "" && var.certificate_arn == ""
  certificate = var.certificate_arn != "" ? var.certificate_arn : try(aws_acm_certificate_validation.this[0].certificate_arn, "")
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:only CloudFront reads it (origin access control) and only the deployer writes it; CloudFront's own request metrics cover the reads, and server access logs would outweigh the page
  #checkov:skip=CKV_AWS_144:the page is built from the repository and republished by tooling/publish-web.sh; a replica in another region buys nothing CloudFront's edge caches do not
  #checkov:skip=CKV_AWS_145:SSE-S3 encrypts at rest; SSE-KMS would need CloudFront's service principal in a key policy and a KMS request per cache miss for public files
  #checkov:skip=CKV2_AWS_62:nothing consumes object-created events of published page files
  bucket        = "${var.name_prefix}-web-${data.aws_caller_identity.this.account_id}-${data.aws_region.this.name}"
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    id     = "expire-replaced-files"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_cloudfront_origin_access_control" "this" {
  name                              = "${var.name_prefix}-web"
  description                       = "CloudFront signs its requests to the page bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "CloudFrontReadsThePage"
        Effect    = "Allow"
        Principal = { Service = "cloudfront.amazonaws.com" }
        Action    = "s3:GetObject"
        Resource  = "${aws_s3_bucket.this.arn}/*"
        Condition = { StringEquals = { "AWS:SourceArn" = aws_cloudfront_distribution.this.arn } }
      },
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_cloudfront_response_headers_policy" "this" {
  count   = var.response_headers_policy ? 1 : 0
  name    = "${var.name_prefix}-security-headers"
  comment = "HSTS, nosniff, no framing, strict referrer, CSP without inline scripts"

  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 63072000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
    content_security_policy {
      content_security_policy = local.csp
      override                = true
    }
  }
}

locals {
  response_headers_policy_id = var.response_headers_policy ? aws_cloudfront_response_headers_policy.this[0].id : null
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_86:standard logs need an ACL-enabled bucket and the log bucket enforces bucket-owner ownership (no ACLs); every API request is in the ALB's access logs, page reads are static files, and the CloudFront metrics and WAF logs cover the edge
  #checkov:skip=CKV_AWS_310:one bucket and one ALB: there is no second origin to fail over to (S3 and the ALB are regional and multi-zone already)
  #checkov:skip=CKV_AWS_374:a public book catalogue is read from anywhere; geo restriction would only lock readers out
  #checkov:skip=CKV2_AWS_47:the web ACL (modules/waf with scope CLOUDFRONT, passed in as web_acl_arn) has AWSManagedRulesKnownBadInputsRuleSet, the Log4j rules; checkov cannot follow the ARN across modules
  #checkov:skip=CKV_AWS_68:web_acl_id is the CLOUDFRONT-scope web ACL of modules/waf (created in us-east-1), passed in from modules/platform; checkov cannot follow it across modules
  #checkov:skip=CKV2_AWS_42:a custom certificate is used whenever domain_name is set (environments/dev requires it); the *.cloudfront.net default exists only on the emulator
  #checkov:skip=CKV2_AWS_32:every behaviour carries the security-headers policy wherever response_headers_policy is on (every AWS environment); only the emulator, which lacks the API, goes without
  #checkov:skip=CKV_AWS_174:with a certificate (dev) the minimum is TLSv1.2_2021; only the emulator's copy, without a domain, uses CloudFront's default certificate, for which the minimum cannot be set
  enabled             = true
  comment             = "${var.name_prefix}: the reader's page (S3) and the API (ALB)"
  default_root_object = "index.html"
  is_ipv6_enabled     = true
  http_version        = "http2and3"
  price_class         = var.price_class
  aliases             = var.domain_name != "" ? [var.domain_name] : []
  web_acl_id          = var.web_acl_arn != "" ? var.web_acl_arn : null

  origin {
    origin_id                = "page"
    domain_name              = aws_s3_bucket.this.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.this.id
  }

  origin {
    origin_id   = "api"
    domain_name = var.api_origin_domain
    custom_origin_config {
      http_port                = 80
      https_port               = 443
      origin_protocol_policy   = "https-only"
      origin_ssl_protocols     = ["TLSv1.2"]
      origin_read_timeout      = 30
      origin_keepalive_timeout = 5
    }
    dynamic "custom_header" {
      for_each = var.origin_header_name != "" ? [var.origin_header_name] : []
      content {
        name  = custom_header.value
        value = var.origin_header_value
      }
    }
  }

  default_cache_behavior {
    target_origin_id           = "page"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.caching_optimized
    response_headers_policy_id = local.response_headers_policy_id
  }

  dynamic "ordered_cache_behavior" {
    for_each = local.api_paths
    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = "api"
      viewer_protocol_policy     = "https-only"
      allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
      cached_methods             = ["GET", "HEAD"]
      compress                   = true
      cache_policy_id            = local.caching_disabled
      origin_request_policy_id   = local.all_viewer_except_host_header
      response_headers_policy_id = local.response_headers_policy_id
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.domain_name == ""
    acm_certificate_arn            = var.domain_name != "" ? local.certificate : null
    ssl_support_method             = var.domain_name != "" ? "sni-only" : null
    minimum_protocol_version       = var.domain_name != "" ? "TLSv1.2_2021" : "TLSv1"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.domain_name == "" || var.certificate_arn != "" || var.zone_id != ""
      error_message = "The page's domain_name needs a certificate: set certificate_arn (ACM, us-east-1) or zone_id (one is issued with DNS validation)."
    }
  }
}

# A certificate for domain_name in us-east-1 (CloudFront's region for certificates), validated by DNS
# in zone_id, and the name pointed at the distribution.
resource "aws_acm_certificate" "this" {
  count             = local.issue_cert ? 1 : 0
  provider          = aws.us_east_1
  domain_name       = var.domain_name
  validation_method = "DNS"
  tags              = var.tags
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "validation" {
  for_each = local.issue_cert ? {
    for o in aws_acm_certificate.this[0].domain_validation_options : o.domain_name => o
  } : {}
  zone_id         = var.zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  count                   = local.issue_cert ? 1 : 0
  provider                = aws.us_east_1
  certificate_arn         = aws_acm_certificate.this[0].arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

resource "aws_route53_record" "alias" {
  for_each = var.domain_name != "" && var.zone_id != "" ? toset(["A", "AAAA"]) : toset([])
  zone_id  = var.zone_id
  name     = var.domain_name
  type     = each.value
  alias {
    name                   = aws_cloudfront_distribution.this.domain_name
    zone_id                = aws_cloudfront_distribution.this.hosted_zone_id
    evaluate_target_health = false
  }
}
