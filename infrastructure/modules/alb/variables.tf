variable "name_prefix" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  type = string
}

variable "public_subnet_ids" {
  type = list(string)
}

variable "services" {
  description = "The decoded infrastructure/definitions/services.json."
  type        = any
}

variable "routes" {
  description = "The decoded infrastructure/definitions/routes.json."
  type        = any
}

variable "certificate_arn" {
  description = "An existing ACM certificate for the HTTPS listener; empty to issue one for domain_name (or, emulator only, none)."
  type        = string
  default     = ""
}

variable "domain_name" {
  description = "Public name of the API: an ACM certificate is issued for it (DNS validation in zone_id) unless certificate_arn is set, and an alias record points it at the ALB."
  type        = string
  default     = ""
}

variable "zone_id" {
  description = "Route 53 hosted zone of domain_name (validation records and the alias)."
  type        = string
  default     = ""
}

variable "require_https" {
  description = "Refuse to build without a certificate (false only on the emulator, whose local stack is HTTP on loopback)."
  type        = bool
  default     = true
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener (TLS 1.3 and 1.2 only)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "deletion_protection" {
  type    = bool
  default = true
}

variable "access_logs" {
  description = "Write access logs to access_logs_bucket."
  type        = bool
  default     = true
}

variable "access_logs_bucket" {
  description = "S3 bucket for access logs (modules/logging)."
  type        = string
  default     = ""
}

variable "access_logs_prefix" {
  type    = string
  default = "alb"
}

variable "web_acl" {
  description = "Associate web_acl_arn (a regional WAFv2 web ACL) with the ALB."
  type        = bool
  default     = false
}

variable "web_acl_arn" {
  type    = string
  default = ""
}

variable "ingress_cidrs" {
  type    = list(string)
  default = ["0.0.0.0/0"]
}

variable "idle_timeout" {
  type    = number
  default = 50
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "ingress_prefix_list_ids" {
  description = "Managed prefix lists (CloudFront's origin-facing one) that alone may connect, instead of ingress_cidrs; empty when no distribution is in front."
  type        = list(string)
  default     = []
}
