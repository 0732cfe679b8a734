output "namespace" {
  value = aws_service_discovery_private_dns_namespace.this.name
}

output "registry_arns" {
  value = { for k, s in aws_service_discovery_service.this : k => s.arn }
}

output "dns_names" {
  value = { for k, s in aws_service_discovery_service.this : k => "${k}.${aws_service_discovery_private_dns_namespace.this.name}" }
}
