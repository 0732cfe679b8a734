variable "namespace" {
  type    = string
  default = "bookrec.internal"
}

variable "vpc_id" {
  type = string
}

variable "services" {
  description = "Services reachable by private DNS name (<service>.<namespace>)."
  type        = list(string)
}

variable "tags" {
  type    = map(string)
  default = {}
}
