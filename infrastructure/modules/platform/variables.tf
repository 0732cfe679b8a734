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
  description = "ACM certificate ARN for HTTPS; empty for HTTP only."
  type        = string
  default     = ""
}

variable "deletion_protection" {
  description = "Deletion protection of the tables and the user pool."
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
  type    = number
  default = 30
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
