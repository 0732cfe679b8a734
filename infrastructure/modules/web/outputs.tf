output "bucket" {
  description = "The page's bucket (tooling/publish-web.sh syncs web/ there)."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  value = aws_s3_bucket.this.arn
}

output "distribution_id" {
  description = "What tooling/publish-web.sh invalidates."
  value       = aws_cloudfront_distribution.this.id
}

output "distribution_arn" {
  value = aws_cloudfront_distribution.this.arn
}

output "domain_name" {
  description = "The distribution's *.cloudfront.net name."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "url" {
  description = "Where readers open the page."
  value       = "https://${var.domain_name != "" ? var.domain_name : aws_cloudfront_distribution.this.domain_name}/"
}

output "api_path_patterns" {
  description = "The API behaviours' path patterns, in routes.json's order."
  value       = local.api_paths
}

output "content_security_policy" {
  value = local.csp
}
