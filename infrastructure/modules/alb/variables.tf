variable "name_prefix" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  type = string
}

variable "public_subnet_ids" {
  type = list(string)
}

variable "services" {
  description = "The decoded infrastructure/definitions/services.json."
  type        = any
}

variable "routes" {
  description = "The decoded infrastructure/definitions/routes.json."
  type        = any
}

variable "certificate_arn" {
  description = "ACM certificate for an HTTPS listener; empty for HTTP only."
  type        = string
  default     = ""
}

variable "ingress_cidrs" {
  type    = list(string)
  default = ["0.0.0.0/0"]
}

variable "idle_timeout" {
  type    = number
  default = 50
}

variable "tags" {
  type    = map(string)
  default = {}
}
