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
  description = "Cache clusters in the replication group: 2 = a primary and a replica in another zone, with automatic failover."
  type        = number
  default     = 2
  validation {
    condition     = var.nodes >= 2
    error_message = "Automatic failover across zones needs a primary and at least one replica."
  }
}

variable "transit_encryption" {
  type    = bool
  default = true
}

variable "snapshot_retention_days" {
  description = "Daily snapshots kept (0 = none)."
  type        = number
  default     = 7
}

variable "auth_token" {
  description = "Redis AUTH token (needs transit encryption); empty for none. The platform passes the Secrets Manager secret's value."
  type        = string
  default     = ""
  sensitive   = true
}

variable "tags" {
  type    = map(string)
  default = {}
}
