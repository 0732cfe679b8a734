output "execution_role_arn" {
  value = aws_iam_role.execution.arn
}

output "task_role_arns" {
  value = { for k, r in aws_iam_role.task : k => r.arn }
}

output "task_role_names" {
  value = { for k, r in aws_iam_role.task : k => r.name }
}

output "builder_role_arns" {
  value = { for k, r in aws_iam_role.builder : k => r.arn }
}

output "builder_role_names" {
  value = { for k, r in aws_iam_role.builder : k => r.name }
}

output "scheduler_role_arn" {
  value = try(aws_iam_role.scheduler[0].arn, null)
}
