output "cluster_name" {
  value = aws_ecs_cluster.this.name
}

output "service_names" {
  value = { for k, s in aws_ecs_service.service : k => s.name }
}

output "security_group_ids" {
  value = { for k, g in aws_security_group.service : k => g.id }
}

output "task_definition_arns" {
  value = { for k, t in aws_ecs_task_definition.service : k => t.arn }
}

output "builder_task_definition_arns" {
  value = { for k, t in aws_ecs_task_definition.builder : k => t.arn }
}

output "builder_security_group_ids" {
  value = { for k, g in aws_security_group.builder : k => g.id }
}

output "builder_schedule_names" {
  value = { for k, s in aws_scheduler_schedule.builder : k => s.name }
}
