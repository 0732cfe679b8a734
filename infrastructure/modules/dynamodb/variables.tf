variable "name_prefix" {
  description = "Table names are <name_prefix>-<logical name>."
  type        = string
}

variable "tables" {
  description = "The decoded infrastructure/definitions/tables.json."
  type        = any
}

variable "deletion_protection" {
  description = "Refuse to delete the tables (on for real environments)."
  type        = bool
  default     = true
}

variable "tags" {
  type    = map(string)
  default = {}
}
