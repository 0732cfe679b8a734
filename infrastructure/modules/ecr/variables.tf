variable "name_prefix" {
  type = string
}

variable "services" {
  description = "Service names (keys of services.json)."
  type        = list(string)
}

variable "keep_images" {
  type    = number
  default = 30
}

variable "force_delete" {
  description = "Allow destroying repositories that still hold images."
  type        = bool
  default     = false
}

variable "tags" {
  type    = map(string)
  default = {}
}
