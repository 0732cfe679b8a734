# ElastiCache Redis in the private subnets, reachable only from the allowed security groups (the
# recommender's). A replication group (encryption in transit, auth token) on AWS; a single-node
# cluster where `replication_group` is off.
resource "aws_security_group" "redis" {
  name        = "${var.name_prefix}-redis"
  description = "Redis, from the recommender only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_clients" {
  for_each                     = var.client_security_groups
  security_group_id            = aws_security_group.redis.id
  referenced_security_group_id = each.value
  from_port                    = 6379
  to_port                      = 6379
  ip_protocol                  = "tcp"
}

resource "aws_elasticache_subnet_group" "this" {
  name       = "${var.name_prefix}-redis"
  subnet_ids = var.private_subnet_ids
}

resource "aws_elasticache_replication_group" "this" {
  count                      = var.replication_group ? 1 : 0
  replication_group_id       = "${var.name_prefix}-redis"
  description                = "bookrec recommendation cache"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.node_type
  num_cache_clusters         = var.nodes
  automatic_failover_enabled = var.nodes > 1
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.redis.id]
  at_rest_encryption_enabled = true
  transit_encryption_enabled = var.transit_encryption
  auth_token                 = var.auth_token == "" ? null : var.auth_token
  tags                       = var.tags
}

resource "aws_elasticache_cluster" "this" {
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
