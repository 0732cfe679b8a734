variable "name_prefix" {
  type = string
}

variable "retention_days" {
  description = "Days ALB access logs and VPC flow logs are kept before S3 expires them."
  type        = number
  default     = 90
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with its logs (local only; never on AWS)."
  type        = bool
  default     = false
}

variable "tags" {
  type    = map(string)
  default = {}
}
