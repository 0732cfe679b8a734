# The same platform against the local emulator (moto server). Emulator gaps are worked around here
# only, by variables of the modules, never by changing what AWS gets:
# - autoscaling off: an aws_appautoscaling_target apply hangs on a tag call the emulator lacks;
# - a single-node aws_elasticache_cluster instead of a replication group (the emulator never
#   creates the group's member cluster), without transit encryption;
# - deletion protection (tables, user pool, ALB) off, images and logs force-deleted, so `destroy`
#   cleans up;
# - no response headers policy on the distribution (the emulator lacks that CloudFront API), and the
#   page bucket force-deleted;
# - no certificate (require_https = false): the HTTP listener routes, as the local stack is HTTP on
#   loopback; so no Redis AUTH token either (it needs TLS, which the single-node cluster lacks).
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

variable "endpoint" {
  description = "The emulator's endpoint, e.g. http://127.0.0.1:4566."
  type        = string
}

variable "name_prefix" {
  type    = string
  default = "bookrec-local"
}

variable "full_stack" {
  type    = bool
  default = true
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true
  endpoints {
    applicationautoscaling = var.endpoint
    cloudfront             = var.endpoint
    cloudwatch             = var.endpoint
    cloudwatchlogs         = var.endpoint
    cognitoidp             = var.endpoint
    dynamodb               = var.endpoint
    ec2                    = var.endpoint
    ecr                    = var.endpoint
    ecs                    = var.endpoint
    elasticache            = var.endpoint
    elbv2                  = var.endpoint
    iam                    = var.endpoint
    s3                     = var.endpoint
    scheduler              = var.endpoint
    secretsmanager         = var.endpoint
    servicediscovery       = var.endpoint
    sts                    = var.endpoint
    wafv2                  = var.endpoint
  }
}

# CloudFront's web ACL (and, on AWS, its certificate) live in us-east-1: the same emulator here.
provider "aws" {
  alias                       = "us_east_1"
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true
  endpoints {
    applicationautoscaling = var.endpoint
    cloudfront             = var.endpoint
    cloudwatch             = var.endpoint
    cloudwatchlogs         = var.endpoint
    cognitoidp             = var.endpoint
    dynamodb               = var.endpoint
    ec2                    = var.endpoint
    ecr                    = var.endpoint
    ecs                    = var.endpoint
    elasticache            = var.endpoint
    elbv2                  = var.endpoint
    iam                    = var.endpoint
    s3                     = var.endpoint
    scheduler              = var.endpoint
    secretsmanager         = var.endpoint
    servicediscovery       = var.endpoint
    sts                    = var.endpoint
    wafv2                  = var.endpoint
  }
}

module "platform" {
  source                   = "../../modules/platform"
  providers                = { aws = aws, aws.us_east_1 = aws.us_east_1 }
  name_prefix              = var.name_prefix
  region                   = "us-east-1"
  full_stack               = var.full_stack
  enable_nat               = false
  deletion_protection      = false
  autoscaling              = false
  cache_replication_group  = false
  cache_transit_encryption = false
  force_delete_images      = true
  force_delete_logs        = true
  force_delete_artifacts   = true
  force_delete_web         = true
  # The emulator has no CloudFront response headers policies; the distribution is created without one.
  web_response_headers_policy = false
  require_https               = false
  secret_recovery_days        = 0
  desired_count               = 1
  log_retention_days          = 1
}

output "table_names" {
  value = module.platform.table_names
}

output "alb_dns_name" {
  value = module.platform.alb_dns_name
}

output "service_names" {
  value = module.platform.service_names
}

output "cluster_name" {
  value = module.platform.cluster_name
}

output "redis_endpoint" {
  value = module.platform.redis_endpoint
}

output "internal_dns_names" {
  value = module.platform.internal_dns_names
}

output "log_bucket" {
  value = module.platform.log_bucket
}

output "web_acl_arn" {
  value = module.platform.web_acl_arn
}

output "https" {
  value = module.platform.https
}

output "user_pool_id" {
  value = module.platform.user_pool_id
}

output "user_pool_client_id" {
  value = module.platform.user_pool_client_id
}

output "jwt_issuer" {
  value = module.platform.jwt_issuer
}

output "artifact_bucket" {
  value = module.platform.artifact_bucket
}

output "builder_task_definition_arns" {
  value = module.platform.builder_task_definition_arns
}

output "builder_schedule_names" {
  value = module.platform.builder_schedule_names
}

output "web_bucket" {
  value = module.platform.web_bucket
}

output "web_distribution_id" {
  value = module.platform.web_distribution_id
}

output "web_domain_name" {
  value = module.platform.web_domain_name
}

output "web_url" {
  value = module.platform.web_url
}

output "web_api_path_patterns" {
  value = module.platform.web_api_path_patterns
}

output "web_content_security_policy" {
  value = module.platform.web_content_security_policy
}

output "cloudfront_web_acl_arn" {
  value = module.platform.cloudfront_web_acl_arn
}
