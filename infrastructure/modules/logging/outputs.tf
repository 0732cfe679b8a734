output "bucket" {
  description = "Bucket name (the ALB's access_logs.bucket)."
  value       = aws_s3_bucket.logs.id
}

output "bucket_arn" {
  value = aws_s3_bucket.logs.arn
}

output "alb_prefix" {
  value = "alb"
}

output "flow_logs_destination" {
  description = "ARN with the flow-log prefix, for aws_flow_log.log_destination."
  value       = "${aws_s3_bucket.logs.arn}/vpc-flow-logs/"
}
