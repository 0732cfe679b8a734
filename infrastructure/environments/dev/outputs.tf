output "alb_dns_name" {
  value = module.platform.alb_dns_name
}

output "cluster_name" {
  value = module.platform.cluster_name
}

output "service_names" {
  value = module.platform.service_names
}

output "table_names" {
  value = module.platform.table_names
}

output "redis_endpoint" {
  value = module.platform.redis_endpoint
}

output "repository_urls" {
  value = module.platform.repository_urls
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

output "log_bucket" {
  value = module.platform.log_bucket
}

output "web_acl_arn" {
  value = module.platform.web_acl_arn
}

output "artifact_bucket" {
  value = module.platform.artifact_bucket
}

output "web_bucket" {
  description = "The page's bucket: tooling/publish-web.sh syncs web/ there."
  value       = module.platform.web_bucket
}

output "web_distribution_id" {
  value = module.platform.web_distribution_id
}

output "web_domain_name" {
  value = module.platform.web_domain_name
}

output "web_url" {
  description = "Where readers open the page and clients call the API."
  value       = module.platform.web_url
}

output "cloudfront_web_acl_arn" {
  value = module.platform.cloudfront_web_acl_arn
}
