# The public ALB. Listener rules are generated from infrastructure/definitions/routes.json:
# forward rules to the service's target group, fixed-response rules (internal endpoints) answer 404.
# Anything unmatched gets the default fixed 404. Internal endpoints are never forwarded.
#
# With a certificate (an ACM ARN, or one issued here for `domain_name` with DNS validation in
# `zone_id`), the rules live on the HTTPS listener (TLS 1.2+) and the HTTP listener only answers a 301
# to HTTPS, so no request with a bearer token is ever forwarded in clear text. Without one (the
# emulator only: `require_https = false`), the HTTP listener carries the rules.
locals {
  # Rules of other kinds (a static folder: the page, which CloudFront serves from S3) are not the ALB's.
  forward_rules     = { for r in var.routes.rules : tostring(r.priority) => r if try(r.service, null) != null }
  behind_cloudfront = length(var.ingress_prefix_list_ids) > 0
  fixed_rules       = { for r in var.routes.rules : tostring(r.priority) => r if try(r.fixed_response, null) != null }
  problem           = jsonencode({ type = "urn:bookrec:problem:no_route", title = "Not found", status = 404, code = "no_route" })
  issue_cert        = var.certificate_arn == "" && var.domain_name != ""
  https             = var.certificate_arn != "" || var.domain_name != ""
  certificate       = var.certificate_arn != "" ? var.certificate_arn : try(aws_acm_certificate_validation.this[0].certificate_arn, "")
}

resource "aws_security_group" "alb" {
  name        = "${var.name_prefix}-alb"
  description = "Public ALB: HTTPS in (HTTP only to be redirected), HTTP out to the service tasks"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "http" {
  #checkov:skip=CKV_AWS_260:port 80 is open to the world only to answer a 301 to HTTPS (the HTTP listener forwards nothing when a certificate is set)
  for_each          = local.behind_cloudfront ? toset([]) : toset(var.ingress_cidrs)
  description       = local.https ? "HTTP from clients, redirected to HTTPS" : "HTTP from clients (no certificate: emulator only)"
  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = each.value
  from_port         = 80
  to_port           = 80
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_ingress_rule" "https" {
  for_each          = local.https && !local.behind_cloudfront ? toset(var.ingress_cidrs) : toset([])
  description       = "HTTPS from clients"
  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = each.value
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

# Behind CloudFront: only CloudFront's origin-facing addresses (an AWS-managed prefix list) may connect,
# on the one port the distribution uses (HTTPS; HTTP only on the emulator, which has no certificate).
# One rule: the list weighs about 55 entries against the group's 60-rule quota.
resource "aws_vpc_security_group_ingress_rule" "cloudfront" {
  for_each          = toset(var.ingress_prefix_list_ids)
  description       = local.https ? "HTTPS from CloudFront's origin-facing addresses only" : "HTTP from CloudFront's origin-facing addresses (no certificate: emulator only)"
  security_group_id = aws_security_group.alb.id
  prefix_list_id    = each.value
  from_port         = local.https ? 443 : 80
  to_port           = local.https ? 443 : 80
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "to_vpc" {
  description       = "To the service tasks' ports and health checks inside the VPC"
  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = min([for s in values(var.services) : s.port]...)
  to_port           = max([for s in values(var.services) : s.port]...)
}

resource "aws_lb" "this" {
  #checkov:skip=CKV_AWS_150:deletion protection follows var.deletion_protection: on in environments/dev (default true), off only on the emulator so that destroy works
  #checkov:skip=CKV2_AWS_76:the web ACL (modules/waf, passed in as web_acl_arn) has AWSManagedRulesKnownBadInputsRuleSet, the Log4j rules; checkov cannot follow the ARN across modules, and this check also wants AnonymousIpList, which would block VPN and hosting-provider readers of a public catalogue
  #checkov:skip=CKV2_AWS_20:with a certificate (required everywhere but the emulator) port 80 is http_redirect, a 301 to HTTPS; the forwarding HTTP listener exists only on the emulator
  name               = "${var.name_prefix}-alb"
  load_balancer_type = "application"
  subnets            = var.public_subnet_ids
  security_groups    = [aws_security_group.alb.id]
  # Below the services' keep-alive (granian keeps idle connections 60 s), so the ALB never reuses a closed one.
  idle_timeout               = var.idle_timeout
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  dynamic "access_logs" {
    for_each = var.access_logs ? [var.access_logs_bucket] : []
    content {
      bucket  = access_logs.value
      prefix  = var.access_logs_prefix
      enabled = true
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = local.https || !var.require_https
      error_message = "HTTPS is required: set certificate_arn (an ACM certificate) or domain_name and zone_id (a certificate issued with DNS validation)."
    }
  }
}

resource "aws_lb_target_group" "service" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; targets sit in private subnets reachable only from the ALB's security group, and TLS to them would need a certificate in every task
  for_each    = var.services
  name        = substr("${var.name_prefix}-${each.key}", 0, 32)
  port        = each.value.port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  health_check {
    path                = each.value.health_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  deregistration_delay = 30
  tags                 = var.tags
}

# A certificate issued for domain_name, validated by DNS in zone_id, and the name pointed at the ALB.
resource "aws_acm_certificate" "this" {
  count             = local.issue_cert ? 1 : 0
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
  certificate_arn         = aws_acm_certificate.this[0].arn
  validation_record_fqdns = [for r in aws_route53_record.validation : r.fqdn]
}

resource "aws_route53_record" "alias" {
  count   = var.domain_name != "" && var.zone_id != "" ? 1 : 0
  zone_id = var.zone_id
  name    = var.domain_name
  type    = "A"
  alias {
    name                   = aws_lb.this.dns_name
    zone_id                = aws_lb.this.zone_id
    evaluate_target_health = false
  }
}

resource "aws_lb_listener" "http_redirect" {
  count             = local.https ? 1 : 0
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:only created without a certificate, which require_https refuses outside the emulator (environments/dev always redirects)
  #checkov:skip=CKV_AWS_103:plain HTTP listener, only created on the emulator (no TLS to configure)
  #checkov:skip=CKV_AWS_378:only created without a certificate, which require_https refuses outside the emulator
  #checkov:skip=CKV2_AWS_76:the web ACL (modules/waf, passed in as web_acl_arn) has AWSManagedRulesKnownBadInputsRuleSet, the Log4j rules; checkov cannot follow the ARN across modules, and this check also wants AnonymousIpList, which would block VPN and hosting-provider readers of a public catalogue
  #checkov:skip=CKV2_AWS_20:only created without a certificate; with one, http_redirect answers 301 to HTTPS instead
  count             = local.https ? 0 : 1
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = local.problem
      status_code  = "404"
    }
  }
}

resource "aws_lb_listener" "https" {
  count             = local.https ? 1 : 0
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  # TLS 1.3 and 1.2 only, forward-secret ciphers.
  ssl_policy      = var.ssl_policy
  certificate_arn = local.certificate

  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = local.problem
      status_code  = "404"
    }
  }
}

locals {
  # The one listener that routes: HTTPS when there is a certificate, else (emulator) HTTP.
  listener = local.https ? aws_lb_listener.https[0].arn : aws_lb_listener.http[0].arn
}

resource "aws_wafv2_web_acl_association" "this" {
  count        = var.web_acl ? 1 : 0
  resource_arn = aws_lb.this.arn
  web_acl_arn  = var.web_acl_arn
}

resource "aws_lb_listener_rule" "forward" {
  for_each     = local.forward_rules
  listener_arn = local.listener
  priority     = each.value.priority

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.service[each.value.service].arn
  }

  condition {
    path_pattern {
      values = each.value.path_patterns
    }
  }
}

resource "aws_lb_listener_rule" "fixed" {
  for_each     = local.fixed_rules
  listener_arn = local.listener
  priority     = each.value.priority

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = local.problem
      status_code  = tostring(each.value.fixed_response.status_code)
    }
  }

  condition {
    path_pattern {
      values = each.value.path_patterns
    }
  }
}
