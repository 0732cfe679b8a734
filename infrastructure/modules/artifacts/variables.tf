variable "name_prefix" {
  type = string
}

variable "noncurrent_days" {
  description = "Days a replaced or deleted artifact version is kept (the window to roll a bad build back)."
  type        = number
  default     = 7
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with its artifacts (emulator only)."
  type        = bool
  default     = false
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "superseded_days" {
  description = "Days a payload replaced by a newer artifact (tagged superseded=true by its builder) is kept."
  type        = number
  default     = 2
}
