variable "name_prefix" {
  type = string
}

variable "services" {
  description = "The decoded infrastructure/definitions/services.json (its `tables` access levels)."
  type        = any
}

variable "region" {
  description = "Region of the cluster and the builder task definitions (the scheduler role's RunTask resources)."
  type        = string
}

variable "artifact_bucket_arn" {
  description = "The artifact bucket (modules/artifacts): replicas read, builders write, each its own prefix."
  type        = string
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
