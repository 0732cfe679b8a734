variable "name_prefix" {
  type = string
}

variable "rate_limit_per_5_minutes" {
  description = "Requests one client address may make in any 5 minutes before WAF blocks it (403) until its rate falls; a coarse line above the services' own limits (search: 1200 a minute)."
  type        = number
  default     = 10000
}

variable "log_retention_days" {
  description = "Days the WAF's blocked/counted request log is kept."
  type        = number
  default     = 90
}

variable "logging" {
  description = "Log blocked and counted requests to CloudWatch Logs."
  type        = bool
  default     = true
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "scope" {
  description = "REGIONAL (the ALB) or CLOUDFRONT (the distribution; the provider must be us-east-1)."
  type        = string
  default     = "REGIONAL"
  validation {
    condition     = contains(["REGIONAL", "CLOUDFRONT"], var.scope)
    error_message = "scope is REGIONAL or CLOUDFRONT."
  }
}

variable "name" {
  description = "The web ACL's name (default <name_prefix>-edge); also the prefix of its metric names when set."
  type        = string
  default     = null
}

variable "log_group_name" {
  description = "Log group of blocked/counted requests (default aws-waf-logs-<name_prefix>); must start with aws-waf-logs-."
  type        = string
  default     = null
}

variable "rate_limit" {
  description = "The per-client-address rate rule; off where every request comes from CloudFront (the ALB behind the distribution)."
  type        = bool
  default     = true
}

variable "origin_header_name" {
  description = "When set, requests without this header carrying origin_header_value are blocked first (the ALB behind CloudFront)."
  type        = string
  default     = ""
}

variable "origin_header_value" {
  type      = string
  default   = ""
  sensitive = true
}
