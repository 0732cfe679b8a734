variable "name_prefix" {
  type = string
}

variable "region" {
  type = string
}

variable "cidr_block" {
  type    = string
  default = "10.40.0.0/16"
}

variable "az_count" {
  description = "Availability zones to spread subnets over (two or more)."
  type        = number
  default     = 2
  validation {
    condition     = var.az_count >= 2
    error_message = "Use at least two availability zones."
  }
}

variable "enable_nat" {
  description = "A NAT gateway for private subnets (needed to pull images unless VPC endpoints are added)."
  type        = bool
  default     = true
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "flow_logs" {
  description = "Flow logs of all traffic to flow_logs_destination."
  type        = bool
  default     = true
}

variable "flow_logs_destination" {
  description = "S3 ARN (with prefix) that receives the VPC's flow logs (modules/logging)."
  type        = string
  default     = ""
}
