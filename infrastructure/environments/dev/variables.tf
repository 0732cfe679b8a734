variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "name_prefix" {
  type    = string
  default = "bookrec-dev"
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
  description = "An existing ACM certificate (in this region) for the HTTPS listener; or leave empty and set domain_name and zone_id to have one issued."
  type        = string
  default     = ""
  validation {
    condition     = var.certificate_arn != "" || (var.domain_name != "" && var.zone_id != "")
    error_message = "dev serves HTTPS only: set certificate_arn, or domain_name and zone_id (a Route 53 zone) to issue a certificate with DNS validation."
  }
}

variable "domain_name" {
  description = "The ALB's name (e.g. api.dev.example.com): a certificate is issued for it unless certificate_arn is set, and an alias record points it at the ALB when zone_id is set. CloudFront reaches the ALB by this name (its certificate must cover it); readers use web_domain_name."
  type        = string
  default     = ""
  validation {
    condition     = var.domain_name != ""
    error_message = "CloudFront reaches the ALB over HTTPS by name: set domain_name (covered by certificate_arn, or issued in zone_id)."
  }
}

variable "web_domain_name" {
  description = "The public name of the page and the API (e.g. books.dev.example.com), a CloudFront alias."
  type        = string
  default     = ""
  validation {
    condition     = var.web_domain_name != "" && (var.web_certificate_arn != "" || var.zone_id != "")
    error_message = "The page is served over TLS 1.2+ only with its own certificate: set web_domain_name, and web_certificate_arn (ACM, us-east-1) or zone_id (a certificate is issued with DNS validation)."
  }
}

variable "web_certificate_arn" {
  description = "An ACM certificate in us-east-1 for web_domain_name; empty to issue one with DNS validation in zone_id."
  type        = string
  default     = ""
}

variable "zone_id" {
  description = "Route 53 hosted zone of domain_name (certificate validation records, alias)."
  type        = string
  default     = ""
}

variable "waf_rate_limit_per_5_minutes" {
  description = "Requests one client address may make in 5 minutes before WAF blocks it."
  type        = number
  default     = 10000
}

variable "access_log_retention_days" {
  description = "Days ALB access logs and VPC flow logs are kept (S3 lifecycle)."
  type        = number
  default     = 90
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
  description = "The git sha pushed by scripts/deploy-images.sh."
  type        = string
  default     = "latest"
}

variable "desired_count" {
  type    = number
  default = 2
}

variable "log_retention_days" {
  description = "Days the services' CloudWatch log groups are kept (30: a debugging window; WAF logs 90, ALB and flow logs 90)."
  type        = number
  default     = 30
}

variable "search_catalogue_books" {
  description = "Books the search index is sized for (search replica and builder cpu/memory follow; at most ~51 million: one replica's ceiling, services/search/README.md)."
  type        = number
  default     = 1000000
}
