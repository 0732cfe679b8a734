# A WAFv2 web ACL: a rate-based rule per client address (a coarse first line, far above the services'
# own per-client limits) and three AWS managed rule groups (IP reputation, known bad inputs, the common
# rule set). REGIONAL for the ALB (modules/alb associates it); CLOUDFRONT (created in us-east-1) for the
# distribution (modules/web). Behind CloudFront the ALB's ACL drops the rate rule (every request there
# comes from a CloudFront address: the CLOUDFRONT ACL sees the reader's) and first blocks any request
# without the secret origin header CloudFront adds. Every rule has CloudWatch metrics and sampled
# requests; blocked and counted requests are logged, with the Authorization header redacted.
terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

locals {
  acl_name  = coalesce(var.name, "${var.name_prefix}-edge")
  log_group = coalesce(var.log_group_name, "aws-waf-logs-${var.name_prefix}")
  metrics   = var.name == null ? var.name_prefix : local.acl_name
}

resource "aws_wafv2_web_acl" "this" {
  name        = local.acl_name
  description = var.scope == "CLOUDFRONT" ? "bookrec CloudFront edge: per-address rate limit and AWS managed rule groups" : "bookrec edge: per-address rate limit and AWS managed rule groups"
  scope       = var.scope

  default_action {
    allow {}
  }

  # Only requests that came through this project's distribution carry the header: other CloudFront
  # distributions share the origin-facing address list the ALB's security group admits.
  dynamic "rule" {
    for_each = var.origin_header_name != "" ? [1] : []
    content {
      name     = "require-origin-header"
      priority = 0
      action {
        block {}
      }
      statement {
        not_statement {
          statement {
            byte_match_statement {
              search_string         = var.origin_header_value
              positional_constraint = "EXACTLY"
              field_to_match {
                single_header {
                  name = lower(var.origin_header_name)
                }
              }
              text_transformation {
                priority = 0
                type     = "NONE"
              }
            }
          }
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.metrics}-require-origin-header"
        sampled_requests_enabled   = true
      }
    }
  }

  dynamic "rule" {
    for_each = var.rate_limit ? [1] : []
    content {
      name     = "rate-per-client-address"
      priority = 1
      action {
        block {}
      }
      statement {
        rate_based_statement {
          limit                 = var.rate_limit_per_5_minutes
          aggregate_key_type    = "IP"
          evaluation_window_sec = 300
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.metrics}-rate-per-client-address"
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "AWSManagedRulesAmazonIpReputationList"
    priority = 10
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAmazonIpReputationList"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.metrics}-AWSManagedRulesAmazonIpReputationList"
      sampled_requests_enabled   = true
    }
  }

  # Log4j/JNDI lookups and other known exploit inputs.
  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 20
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.metrics}-AWSManagedRulesKnownBadInputsRuleSet"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesCommonRuleSet"
    priority = 30
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
        # The services accept JSON bodies up to 64 KB and answer 413 Problem Details past that; this
        # group's 8 KB body limit is only counted, so that contract holds at the edge.
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.metrics}-AWSManagedRulesCommonRuleSet"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.acl_name
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

# WAF requires the log group's name to start with aws-waf-logs-.
resource "aws_cloudwatch_log_group" "waf" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest with its own keys; a customer-managed KMS key adds $1/month per key plus request costs and key administration for no gain here
  #checkov:skip=CKV_AWS_338:blocked-request logs are for investigating recent attacks; retention is var.log_retention_days (90 in dev), not a year
  name              = local.log_group
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  count                   = var.logging ? 1 : 0
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # Bearer tokens never reach a log.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  # Only what a rule blocked or counted: allowed traffic is already in the ALB's access logs.
  logging_filter {
    default_behavior = "DROP"
    filter {
      behavior    = "KEEP"
      requirement = "MEETS_ANY"
      condition {
        action_condition {
          action = "BLOCK"
        }
      }
      condition {
        action_condition {
          action = "COUNT"
        }
      }
    }
  }
}
