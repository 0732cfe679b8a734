variable "name_prefix" {
  type = string
}

variable "region" {
  type = string
}

variable "services" {
  type = list(string)
}

variable "alb_arn_suffix" {
  type = string
}

variable "target_group_arn_suffixes" {
  type = map(string)
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "max_5xx_per_minute" {
  type    = number
  default = 5
}

variable "max_p95_seconds" {
  type    = number
  default = 0.5
}

variable "alarm_actions" {
  description = "SNS topics (or other actions) to notify."
  type        = list(string)
  default     = []
}

variable "tags" {
  type    = map(string)
  default = {}
}
