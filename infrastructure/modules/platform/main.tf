# The whole bookrec platform, wired from the single definitions in infrastructure/definitions/.
# environments/dev (AWS) and environments/local (the emulator) both use this one composition.
terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # CloudFront's web ACL and certificate live in us-east-1, whatever the platform's region.
      configuration_aliases = [aws.us_east_1]
    }
  }
}

locals {
  definitions = "${path.module}/../../definitions"
  tables      = jsondecode(file("${local.definitions}/tables.json"))
  declared    = jsondecode(file("${local.definitions}/services.json"))
  # Search's replica and builder tasks grow with the catalogue (modules/search_sizing); services.json
  # holds their floors. The search builder's ephemeral storage holds its snapshot file.
  services = merge(local.declared, { search = merge(local.declared.search, module.search_sizing.replica, {
    builder = merge(local.declared.search.builder, module.search_sizing.builder, {
      ephemeral_storage = module.search_sizing.builder_ephemeral_storage
    })
  }) })
  routes    = jsondecode(file("${local.definitions}/routes.json"))
  full      = var.full_stack ? 1 : 0
  tags      = merge({ project = "bookrec", environment = var.name_prefix }, var.tags)
  table_env = { for logical, name in module.dynamodb.table_names : "${upper(logical)}_TABLE" => name }
  # Services some other service calls get a private DNS name (the recommender).
  internal = distinct(flatten([for spec in local.services : try(spec.calls, [])]))
  auth     = [for name, spec in local.services : name if try(spec.auth, false)]
  # A Redis AUTH token exists where Redis speaks TLS: the replication group on AWS.
  redis_auth = var.full_stack && var.cache_replication_group && var.cache_transit_encryption ? 1 : 0
  # The reader's page: CloudFront in front of the page bucket and the ALB (modules/web).
  web = var.full_stack && var.web ? 1 : 0
}

module "search_sizing" {
  source          = "../search_sizing"
  catalogue_books = var.search_catalogue_books
  replica_floor   = { cpu = local.declared.search.cpu, memory = local.declared.search.memory }
  builder_floor   = { cpu = local.declared.search.builder.cpu, memory = local.declared.search.builder.memory }
}

module "dynamodb" {
  source              = "../dynamodb"
  name_prefix         = var.name_prefix
  tables              = local.tables
  deletion_protection = var.deletion_protection
  tags                = local.tags
}

module "logging" {
  count          = local.full
  source         = "../logging"
  name_prefix    = var.name_prefix
  retention_days = var.access_log_retention_days
  force_destroy  = var.force_delete_logs
  tags           = local.tags
}

# Derived state (search index snapshots, recommendation models): builders write, replicas read.
module "artifacts" {
  count         = local.full
  source        = "../artifacts"
  name_prefix   = var.name_prefix
  force_destroy = var.force_delete_artifacts
  tags          = local.tags
}

module "network" {
  count                 = local.full
  source                = "../network"
  name_prefix           = var.name_prefix
  region                = var.region
  az_count              = var.az_count
  enable_nat            = var.enable_nat
  flow_logs_destination = module.logging[0].flow_logs_destination
  tags                  = local.tags
}

module "ecr" {
  count        = local.full
  source       = "../ecr"
  name_prefix  = var.name_prefix
  services     = keys(local.services)
  force_delete = var.force_delete_images
  tags         = local.tags
}

# Secrets generated once, kept in Secrets Manager and injected into the tasks that need them; rotated
# deliberately (infrastructure/README.md). The internal token guards service-to-service endpoints
# (invalidation); the Redis AUTH token exists only where Redis speaks TLS (an AUTH token needs it).
locals {
  generated_secrets = merge(
    var.full_stack ? { "internal-token" = {
    description = "Shared secret of internal service-to-service endpoints (invalidation)", length = 40 } } : {},
    local.redis_auth == 1 ? { "redis-auth-token" = {
    description = "Redis AUTH token of the ElastiCache replication group", length = 64 } } : {},
  )
}

resource "aws_secretsmanager_secret" "generated" {
  #checkov:skip=CKV2_AWS_57:no rotation Lambda: rotating means redeploying every task that holds the value; rotate deliberately (infrastructure/README.md)
  #checkov:skip=CKV_AWS_149:encrypted with the Secrets Manager AWS-managed key; a customer-managed key adds cost and key administration, no access path beyond the task execution role
  for_each                = local.generated_secrets
  name                    = "${var.name_prefix}/${each.key}"
  description             = each.value.description
  recovery_window_in_days = var.secret_recovery_days
  tags                    = local.tags
}

data "aws_secretsmanager_random_password" "generated" {
  for_each            = local.generated_secrets
  password_length     = each.value.length
  exclude_punctuation = true # ElastiCache refuses some punctuation in AUTH tokens
}

resource "aws_secretsmanager_secret_version" "generated" {
  for_each      = local.generated_secrets
  secret_id     = aws_secretsmanager_secret.generated[each.key].id
  secret_string = data.aws_secretsmanager_random_password.generated[each.key].random_password
  lifecycle {
    ignore_changes = [secret_string] # generated once; rotate deliberately
  }
}

# Where the internal token was deployed under its own name: kept, not replaced (a deleted secret's
# name stays taken for its recovery window).
moved {
  from = aws_secretsmanager_secret.internal_token[0]
  to   = aws_secretsmanager_secret.generated["internal-token"]
}

moved {
  from = aws_secretsmanager_secret_version.internal_token[0]
  to   = aws_secretsmanager_secret_version.generated["internal-token"]
}

module "identity" {
  count               = local.full
  source              = "../identity"
  name_prefix         = var.name_prefix
  region              = var.region
  deletion_protection = var.deletion_protection
  self_sign_up        = var.self_sign_up
  tags                = local.tags
}

module "iam" {
  count               = local.full
  source              = "../iam"
  name_prefix         = var.name_prefix
  region              = var.region
  services            = local.services
  table_arns          = module.dynamodb.table_arns
  artifact_bucket_arn = module.artifacts[0].bucket_arn
  secret_arns         = [for secret in aws_secretsmanager_secret.generated : secret.arn]
  tags                = local.tags
}

module "alb" {
  count               = local.full
  source              = "../alb"
  name_prefix         = var.name_prefix
  vpc_id              = module.network[0].vpc_id
  vpc_cidr            = module.network[0].vpc_cidr
  public_subnet_ids   = module.network[0].public_subnet_ids
  services            = local.services
  routes              = local.routes
  certificate_arn     = var.certificate_arn
  domain_name         = var.domain_name
  zone_id             = var.zone_id
  require_https       = var.require_https
  deletion_protection = var.deletion_protection
  access_logs_bucket  = module.logging[0].bucket
  web_acl             = var.waf
  web_acl_arn         = try(module.waf[0].web_acl_arn, "")
  # Behind the distribution only CloudFront's origin-facing addresses may connect.
  ingress_prefix_list_ids = local.web == 1 ? [data.aws_ec2_managed_prefix_list.cloudfront[0].id] : []
  tags                    = local.tags
}

# The ALB's regional web ACL. Behind CloudFront it blocks requests without the secret origin header
# (any CloudFront distribution, anyone's, connects from the addresses the ALB admits) and leaves the
# per-address rate rule to the CloudFront ACL, which sees the reader's address rather than CloudFront's.
module "waf" {
  count                    = var.waf ? local.full : 0
  source                   = "../waf"
  name_prefix              = var.name_prefix
  rate_limit_per_5_minutes = var.waf_rate_limit_per_5_minutes
  rate_limit               = local.web == 0
  origin_header_name       = local.web == 1 ? local.origin_header : ""
  origin_header_value      = local.web == 1 ? aws_secretsmanager_secret_version.origin_verify[0].secret_string : ""
  log_retention_days       = var.waf_log_retention_days
  logging                  = var.waf_logging
  tags                     = local.tags
}

# The reader's page (modules/web): S3 behind CloudFront, the API paths of routes.json to the ALB.
locals {
  origin_header = "X-Origin-Verify"
}

data "aws_ec2_managed_prefix_list" "cloudfront" {
  count = local.web
  name  = "com.amazonaws.global.cloudfront.origin-facing"
}

# The origin header's value: generated once, read by CloudFront (which adds it) and the ALB's web ACL
# (which requires it). Rotating it is `terraform apply -replace` of the version (infrastructure/README.md).
resource "aws_secretsmanager_secret" "origin_verify" {
  #checkov:skip=CKV2_AWS_57:no rotation Lambda: the value lives in the distribution's origin and the ALB's web ACL, both updated by one terraform apply -replace (infrastructure/README.md)
  #checkov:skip=CKV_AWS_149:encrypted with the Secrets Manager AWS-managed key; no task or role reads it, Terraform alone does
  count                   = local.web
  name                    = "${var.name_prefix}/origin-verify"
  description             = "Header value CloudFront adds to requests to the ALB, whose web ACL blocks requests without it"
  recovery_window_in_days = var.secret_recovery_days
  tags                    = local.tags
}

data "aws_secretsmanager_random_password" "origin_verify" {
  count               = local.web
  password_length     = 48
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "origin_verify" {
  count         = local.web
  secret_id     = aws_secretsmanager_secret.origin_verify[0].id
  secret_string = data.aws_secretsmanager_random_password.origin_verify[0].random_password
  lifecycle {
    ignore_changes = [secret_string] # generated once; rotate with -replace
  }
}

# A CLOUDFRONT-scope web ACL lives in us-east-1: the same rules as the ALB's had before the
# distribution (rate per reader address, IP reputation, known bad inputs, the common rule set).
module "waf_cloudfront" {
  count                    = var.waf ? local.web : 0
  source                   = "../waf"
  providers                = { aws = aws.us_east_1 }
  name_prefix              = var.name_prefix
  name                     = "${var.name_prefix}-cdn"
  log_group_name           = "aws-waf-logs-${var.name_prefix}-cdn"
  scope                    = "CLOUDFRONT"
  rate_limit_per_5_minutes = var.waf_rate_limit_per_5_minutes
  log_retention_days       = var.waf_log_retention_days
  logging                  = var.waf_logging
  tags                     = local.tags
}

module "web" {
  count                   = local.web
  source                  = "../web"
  providers               = { aws = aws, aws.us_east_1 = aws.us_east_1 }
  name_prefix             = var.name_prefix
  region                  = var.region
  routes                  = local.routes
  services                = local.services
  api_origin_domain       = var.domain_name != "" ? var.domain_name : module.alb[0].dns_name
  origin_header_name      = local.origin_header
  origin_header_value     = aws_secretsmanager_secret_version.origin_verify[0].secret_string
  web_acl_arn             = try(module.waf_cloudfront[0].web_acl_arn, "")
  domain_name             = var.web_domain_name
  certificate_arn         = var.web_certificate_arn
  zone_id                 = var.zone_id
  response_headers_policy = var.web_response_headers_policy
  price_class             = var.web_price_class
  force_destroy           = var.force_delete_web
  tags                    = local.tags
}

module "service_discovery" {
  count    = local.full
  source   = "../service_discovery"
  vpc_id   = module.network[0].vpc_id
  services = local.internal
  tags     = local.tags
}

module "monitoring" {
  count                     = local.full
  source                    = "../monitoring"
  name_prefix               = var.name_prefix
  region                    = var.region
  services                  = keys(local.services)
  alb_arn_suffix            = module.alb[0].arn_suffix
  target_group_arn_suffixes = module.alb[0].target_group_arn_suffixes
  log_retention_days        = var.log_retention_days
  tags                      = local.tags
}

module "ecs" {
  count                     = local.full
  source                    = "../ecs"
  name_prefix               = var.name_prefix
  region                    = var.region
  services                  = local.services
  vpc_id                    = module.network[0].vpc_id
  vpc_cidr                  = module.network[0].vpc_cidr
  private_subnet_ids        = module.network[0].private_subnet_ids
  alb_security_group_id     = module.alb[0].security_group_id
  alb_arn_suffix            = module.alb[0].arn_suffix
  target_group_arns         = module.alb[0].target_group_arns
  target_group_arn_suffixes = module.alb[0].target_group_arn_suffixes
  repository_urls           = module.ecr[0].repository_urls
  image_tag                 = var.image_tag
  execution_role_arn        = module.iam[0].execution_role_arn
  task_role_arns            = module.iam[0].task_role_arns
  log_group_names           = module.monitoring[0].log_group_names
  table_env                 = local.table_env
  extra_environment         = { for name in local.auth : name => module.identity[0].jwt_environment }
  redis_url                 = module.cache[0].url
  internal_dns_names        = module.service_discovery[0].dns_names
  registry_arns             = module.service_discovery[0].registry_arns
  secrets = { for name, spec in local.services : name => merge(
    contains(local.auth, name) ? { INTERNAL_TOKEN = aws_secretsmanager_secret.generated["internal-token"].arn } : {},
    try(spec.redis, false) && local.redis_auth == 1 ? { REDIS_AUTH_TOKEN = aws_secretsmanager_secret.generated["redis-auth-token"].arn } : {},
  ) }
  artifact_bucket    = module.artifacts[0].bucket
  builder_role_arns  = module.iam[0].builder_role_arns
  scheduler_role_arn = coalesce(module.iam[0].scheduler_role_arn, "")
  builder_schedules  = var.builder_schedules
  desired_count      = var.desired_count
  autoscaling        = var.autoscaling
  tags               = local.tags
}

module "cache" {
  count              = local.full
  source             = "../cache"
  name_prefix        = var.name_prefix
  vpc_id             = module.network[0].vpc_id
  private_subnet_ids = module.network[0].private_subnet_ids
  client_security_groups = merge(
    { for name, spec in local.services : name => module.ecs[0].security_group_ids[name] if try(spec.redis, false) },
    { for name, spec in local.services : "${name}-builder" => module.ecs[0].builder_security_group_ids[name] if try(spec.redis, false) && try(spec.builder, null) != null },
  )
  replication_group  = var.cache_replication_group
  transit_encryption = var.cache_transit_encryption
  auth_token         = local.redis_auth == 1 ? aws_secretsmanager_secret_version.generated["redis-auth-token"].secret_string : ""
  tags               = local.tags
}
