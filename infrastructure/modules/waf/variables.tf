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
