variable "name_prefix" {
  type = string
}

variable "services" {
  description = "The decoded infrastructure/definitions/services.json (its `tables` access levels)."
  type        = any
}

variable "table_arns" {
  description = "Logical table name => ARN."
  type        = map(string)
}

variable "secret_arns" {
  description = "Secrets the execution role may read to inject into containers."
  type        = list(string)
  default     = []
}

variable "tags" {
  type    = map(string)
  default = {}
}
