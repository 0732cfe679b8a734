output "table_names" {
  value = module.dynamodb.table_names
}

output "alb_dns_name" {
  value = try(module.alb[0].dns_name, null)
}

output "cluster_name" {
  value = try(module.ecs[0].cluster_name, null)
}

output "service_names" {
  value = try(module.ecs[0].service_names, {})
}

output "repository_urls" {
  value = try(module.ecr[0].repository_urls, {})
}

output "redis_endpoint" {
  value = try(module.cache[0].endpoint, null)
}

output "internal_dns_names" {
  value = try(module.service_discovery[0].dns_names, {})
}

output "user_pool_id" {
  value = try(module.identity[0].user_pool_id, null)
}

output "user_pool_client_id" {
  value = try(module.identity[0].user_pool_client_id, null)
}

output "jwt_issuer" {
  value = try(module.identity[0].jwt_issuer, null)
}

output "log_bucket" {
  description = "S3 bucket of the ALB access logs (alb/) and VPC flow logs (vpc-flow-logs/)."
  value       = try(module.logging[0].bucket, null)
}

output "web_acl_arn" {
  value = try(module.waf[0].web_acl_arn, null)
}

output "https" {
  description = "Whether the ALB serves HTTPS and only redirects HTTP."
  value       = try(module.alb[0].https, null)
}

output "redis_auth_secret_arn" {
  value = try(aws_secretsmanager_secret.generated["redis-auth-token"].arn, null)
}

output "artifact_bucket" {
  description = "S3 bucket of the builders' artifacts (<service prefix>/ per service with a builder)."
  value       = try(module.artifacts[0].bucket, null)
}

output "builder_task_definition_arns" {
  value = try(module.ecs[0].builder_task_definition_arns, {})
}

output "builder_schedule_names" {
  value = try(module.ecs[0].builder_schedule_names, {})
}

output "web_bucket" {
  description = "S3 bucket of the reader's page (tooling/publish-web.sh)."
  value       = try(module.web[0].bucket, null)
}

output "web_distribution_id" {
  value = try(module.web[0].distribution_id, null)
}

output "web_domain_name" {
  description = "The distribution's *.cloudfront.net name."
  value       = try(module.web[0].domain_name, null)
}

output "web_url" {
  description = "Where readers open the page (and call the API)."
  value       = try(module.web[0].url, null)
}

output "web_api_path_patterns" {
  value = try(module.web[0].api_path_patterns, [])
}

output "web_content_security_policy" {
  value = try(module.web[0].content_security_policy, null)
}

output "cloudfront_web_acl_arn" {
  value = try(module.waf_cloudfront[0].web_acl_arn, null)
}

output "search_task_sizes" {
  description = "The search replica and builder tasks as sized for search_catalogue_books: cpu units, memory MiB (the builder's ephemeral storage in GiB)."
  value = {
    replica = module.search_sizing.replica
    builder = merge(module.search_sizing.builder, { ephemeral_storage = module.search_sizing.builder_ephemeral_storage })
  }
}
