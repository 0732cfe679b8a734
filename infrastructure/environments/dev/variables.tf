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
  description = "ACM certificate for the HTTPS listener; empty for HTTP only."
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
  description = "The git sha pushed by scripts/deploy-images.sh."
  type        = string
  default     = "latest"
}

variable "desired_count" {
  type    = number
  default = 2
}

variable "log_retention_days" {
  type    = number
  default = 30
}
