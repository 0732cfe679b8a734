# bookrec on AWS. State lives in S3 with a DynamoDB lock table (see backend.hcl.example):
#   terraform init -backend-config=backend.hcl && terraform apply -var-file=dev.tfvars
terraform {
  required_version = ">= 1.9" # variable validations that refer to other variables
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
  backend "s3" {}
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { project = "bookrec", environment = var.name_prefix }
  }
}

# CloudFront's web ACL and certificate must be created in us-east-1.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
  default_tags {
    tags = { project = "bookrec", environment = var.name_prefix }
  }
}

module "platform" {
  source                       = "../../modules/platform"
  providers                    = { aws = aws, aws.us_east_1 = aws.us_east_1 }
  name_prefix                  = var.name_prefix
  region                       = var.region
  az_count                     = var.az_count
  enable_nat                   = var.enable_nat
  certificate_arn              = var.certificate_arn
  domain_name                  = var.domain_name
  zone_id                      = var.zone_id
  require_https                = true
  waf                          = true
  waf_rate_limit_per_5_minutes = var.waf_rate_limit_per_5_minutes
  deletion_protection          = var.deletion_protection
  self_sign_up                 = var.self_sign_up
  image_tag                    = var.image_tag
  desired_count                = var.desired_count
  log_retention_days           = var.log_retention_days
  access_log_retention_days    = var.access_log_retention_days
  cache_replication_group      = true
  cache_transit_encryption     = true
  autoscaling                  = true
  web                          = true
  web_domain_name              = var.web_domain_name
  web_certificate_arn          = var.web_certificate_arn
  search_catalogue_books       = var.search_catalogue_books
}
