variable "name_prefix" {
  description = "Name of the user pool; the app client is <prefix>-api."
  type        = string
}

variable "region" {
  description = "The pool's region, part of the token issuer and JWKS URL."
  type        = string
}

variable "deletion_protection" {
  type    = bool
  default = true
}

variable "self_sign_up" {
  description = "Whether users may sign themselves up; false means only administrators create users."
  type        = bool
  default     = false
}

variable "password_minimum_length" {
  type    = number
  default = 12
}

variable "refresh_token_days" {
  type    = number
  default = 30
}

variable "tags" {
  type    = map(string)
  default = {}
}
