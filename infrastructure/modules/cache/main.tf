# ElastiCache Redis in the private subnets, reachable only from the allowed security groups (the
# services with "redis": true: the recommender's cache, and the shared rate limits of search and
# ratings). On AWS a replication group: a primary and a replica in different zones with automatic
# failover, encryption at rest and in transit, an AUTH token, daily snapshots. A single-node cluster
# where `replication_group` is off (the emulator, which cannot create a replication group's members).
resource "aws_security_group" "redis" {
  name        = "${var.name_prefix}-redis"
  description = "Redis (recommendation cache, shared rate limits), from the services with redis: true"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_clients" {
  for_each                     = var.client_security_groups
  description                  = "Redis from the ${each.key} tasks"
  security_group_id            = aws_security_group.redis.id
  referenced_security_group_id = each.value
  from_port                    = 6379
  to_port                      = 6379
  ip_protocol                  = "tcp"
}

resource "aws_elasticache_subnet_group" "this" {
  name        = "${var.name_prefix}-redis"
  description = "Private subnets of every zone, so primary and replica can sit in different zones"
  subnet_ids  = var.private_subnet_ids
}

resource "aws_elasticache_replication_group" "this" {
  #checkov:skip=CKV_AWS_191:encrypted at rest with the ElastiCache-owned key; a customer-managed KMS key ($1/month plus requests) would only add key administration for cache data that is rebuilt from DynamoDB
  count                      = var.replication_group ? 1 : 0
  replication_group_id       = "${var.name_prefix}-redis"
  description                = "bookrec recommendation cache and shared rate limits"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.node_type
  num_cache_clusters         = var.nodes
  automatic_failover_enabled = true
  multi_az_enabled           = true
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.redis.id]
  at_rest_encryption_enabled = true
  transit_encryption_enabled = var.transit_encryption
  auth_token                 = var.auth_token == "" ? null : var.auth_token
  auth_token_update_strategy = var.auth_token == "" ? null : "ROTATE"
  snapshot_retention_limit   = var.snapshot_retention_days
  snapshot_window            = "03:00-04:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  apply_immediately          = false
  tags                       = var.tags

  lifecycle {
    precondition {
      condition     = var.auth_token == "" || var.transit_encryption
      error_message = "A Redis AUTH token needs transit encryption (TLS)."
    }
  }
}

resource "aws_elasticache_cluster" "this" {
  #checkov:skip=CKV_AWS_134:the single-node cluster is only built on the emulator (replication_group = false); AWS gets the replication group with snapshots
  count              = var.replication_group ? 0 : 1
  cluster_id         = "${var.name_prefix}-redis"
  engine             = "redis"
  engine_version     = "7.1"
  node_type          = var.node_type
  num_cache_nodes    = 1
  port               = 6379
  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.redis.id]
  tags               = var.tags
  lifecycle {
    ignore_changes = [security_group_ids] # the emulator omits them on read
  }
}

locals {
  host   = var.replication_group ? try(aws_elasticache_replication_group.this[0].primary_endpoint_address, "") : try(aws_elasticache_cluster.this[0].cache_nodes[0].address, "")
  scheme = var.transit_encryption && var.replication_group ? "rediss" : "redis"
}
