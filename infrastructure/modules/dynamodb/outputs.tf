output "table_names" {
  description = "Logical name => table name."
  value       = { for k, t in aws_dynamodb_table.this : k => t.name }
}

output "table_arns" {
  description = "Logical name => table ARN."
  value       = { for k, t in aws_dynamodb_table.this : k => t.arn }
}
