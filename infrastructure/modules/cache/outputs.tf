output "endpoint" {
  description = "Redis host (may be empty on the emulator, which reports no cache nodes)."
  value       = local.host
}

output "url" {
  value = local.host == "" ? "" : "${local.scheme}://${local.host}:6379/0"
}

output "security_group_id" {
  value = aws_security_group.redis.id
}
