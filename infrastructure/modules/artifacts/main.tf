# The artifact bucket: derived state (the search index snapshot, the recommendation model) written by
# each service's builder under its own prefix and only read by the service's replicas. Versioned (a
# bad build can be rolled back to the previous object version for `noncurrent_days`), SSE-S3,
# every form of public access blocked, objects owned by the bucket owner, TLS-only access,
# incomplete multipart uploads aborted. Who may read or write which prefix is decided by the task
# roles (modules/iam), not here.
data "aws_caller_identity" "this" {}

data "aws_region" "this" {}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:only the builder and replica task roles touch it, each limited to its prefix by IAM; server access logs would cost more than the artifacts themselves
  #checkov:skip=CKV_AWS_144:the artifacts are derived state, rebuilt from the tables by the next scheduled builder run; replicating them elsewhere buys nothing
  #checkov:skip=CKV_AWS_145:SSE-S3 encrypts at rest; SSE-KMS would add a KMS request to every replica poll and build for no access path IAM does not already close
  #checkov:skip=CKV2_AWS_62:replicas poll their prefix (ARTIFACT_POLL_SECONDS); nothing consumes object-created events
  bucket        = "${var.name_prefix}-artifacts-${data.aws_caller_identity.this.account_id}-${data.aws_region.this.name}"
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
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  # A builder tags the payload its new manifest replaces; replicas fetch within seconds of a manifest,
  # so a superseded payload can go after a day or two, while the current one never expires.
  rule {
    id     = "expire-superseded-payloads"
    status = "Enabled"
    filter {
      tag {
        key   = "superseded"
        value = "true"
      }
    }
    expiration {
      days = var.superseded_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TlsOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
  depends_on = [aws_s3_bucket_public_access_block.this]
}
