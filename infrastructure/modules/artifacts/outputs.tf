output "bucket" {
  description = "Bucket name (ARTIFACT_BUCKET of the replicas and builders)."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  value = aws_s3_bucket.this.arn
}
