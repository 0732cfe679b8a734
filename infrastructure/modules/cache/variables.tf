variable "name_prefix" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "client_security_groups" {
  description = "Name => security group allowed to reach Redis (the services with redis: true)."
  type        = map(string)
}

variable "replication_group" {
  description = "A replication group (AWS); a single-node cluster when false."
  type        = bool
  default     = true
}

variable "node_type" {
  type    = string
  default = "cache.t4g.small"
}

variable "nodes" {
  type    = number
  default = 2
}

variable "transit_encryption" {
  type    = bool
  default = true
}

variable "auth_token" {
  description = "Redis AUTH token (needs transit encryption); empty for none."
  type        = string
  default     = ""
  sensitive   = true
}

variable "tags" {
  type    = map(string)
  default = {}
}
