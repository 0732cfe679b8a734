variable "name_prefix" {
  description = "Prefix of every resource name, and of the tables (<prefix>-books)."
  type        = string
}

variable "region" {
  type = string
}

variable "full_stack" {
  description = "Everything; false provisions only the tables (the local stack's fast path)."
  type        = bool
  default     = true
}

variable "az_count" {
  type    = number
  default = 2
}

variable "enable_nat" {
  type    = bool
  default = true
}

variable "certificate_arn" {
  description = "ACM certificate ARN for HTTPS; empty to issue one for domain_name."
  type        = string
  default     = ""
}

variable "domain_name" {
  description = "The API's public name: a certificate is issued for it (DNS validation in zone_id) unless certificate_arn is set."
  type        = string
  default     = ""
}

variable "zone_id" {
  description = "Route 53 hosted zone of domain_name."
  type        = string
  default     = ""
}

variable "require_https" {
  description = "Refuse to build the ALB without a certificate (false only on the emulator)."
  type        = bool
  default     = true
}

variable "waf" {
  description = "A WAFv2 web ACL in front of the ALB (off only where the emulator lacks the API)."
  type        = bool
  default     = true
}

variable "waf_rate_limit_per_5_minutes" {
  description = "Requests per client address per 5 minutes before WAF blocks it."
  type        = number
  default     = 10000
}

variable "waf_logging" {
  type    = bool
  default = true
}

variable "waf_log_retention_days" {
  type    = number
  default = 90
}

variable "access_log_retention_days" {
  description = "Days ALB access logs and VPC flow logs are kept in the log bucket."
  type        = number
  default     = 90
}

variable "force_delete_logs" {
  description = "Let destroy delete the log bucket with its logs (emulator only)."
  type        = bool
  default     = false
}

variable "force_delete_artifacts" {
  description = "Let destroy delete the artifact bucket with its artifacts (emulator only)."
  type        = bool
  default     = false
}

variable "builder_schedules" {
  description = "EventBridge Scheduler schedules that run the builders (false only where the emulator cannot apply them)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Deletion protection of the tables, the user pool and the ALB."
  type        = bool
  default     = true
}

variable "self_sign_up" {
  description = "Whether users may sign themselves up in the user pool (else administrators create them)."
  type        = bool
  default     = false
}

variable "image_tag" {
  type    = string
  default = "latest"
}

variable "desired_count" {
  type    = number
  default = 2
}

variable "autoscaling" {
  type    = bool
  default = true
}

variable "cache_replication_group" {
  type    = bool
  default = true
}

variable "cache_transit_encryption" {
  type    = bool
  default = true
}

variable "log_retention_days" {
  description = "Days the services' CloudWatch log groups are kept."
  type        = number
  default     = 30
}

variable "secret_recovery_days" {
  type    = number
  default = 7
}

variable "force_delete_images" {
  type    = bool
  default = false
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "web" {
  description = "The reader's page: an S3 bucket behind a CloudFront distribution that also fronts the API (modules/web); the ALB then admits only CloudFront."
  type        = bool
  default     = true
}

variable "web_domain_name" {
  description = "The page's public name (a CloudFront alias, certificate in us-east-1); empty serves it on *.cloudfront.net."
  type        = string
  default     = ""
}

variable "web_certificate_arn" {
  description = "An ACM certificate in us-east-1 for web_domain_name; empty to issue one with DNS validation in zone_id."
  type        = string
  default     = ""
}

variable "web_response_headers_policy" {
  description = "The security-headers response headers policy (false only where the emulator lacks the API)."
  type        = bool
  default     = true
}

variable "web_price_class" {
  type    = string
  default = "PriceClass_100"
}

variable "force_delete_web" {
  description = "Let destroy delete the page bucket with its files (emulator only)."
  type        = bool
  default     = false
}

variable "search_catalogue_books" {
  description = "Books the search index is sized for: the search replica and builder tasks' cpu and memory follow (modules/search_sizing); below ~600,000 books services.json's sizes."
  type        = number
  default     = 0
}
