# A private DNS namespace: services that others call internally (the recommender) register here, so
# internal endpoints such as invalidation never need to be on the public ALB.
resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = var.namespace
  description = "bookrec internal service names"
  vpc         = var.vpc_id
  tags        = var.tags
}

resource "aws_service_discovery_service" "this" {
  for_each = toset(var.services)
  name     = each.key

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  health_check_custom_config {
    failure_threshold = 1
  }

  tags = var.tags
}
