output "user_pool_id" {
  value = aws_cognito_user_pool.this.id
}

output "user_pool_arn" {
  value = aws_cognito_user_pool.this.arn
}

output "user_pool_client_id" {
  value = aws_cognito_user_pool_client.api.id
}

output "admin_group_name" {
  value = aws_cognito_user_group.admin.name
}

output "jwt_issuer" {
  description = "The `iss` claim of the pool's tokens."
  value       = local.issuer
}

output "jwks_url" {
  value = "${local.issuer}/.well-known/jwks.json"
}

output "jwt_environment" {
  description = "JWT_JWKS_URL, JWT_ISSUER and JWT_AUDIENCE for the services that verify tokens."
  value = {
    JWT_JWKS_URL = "${local.issuer}/.well-known/jwks.json"
    JWT_ISSUER   = local.issuer
    JWT_AUDIENCE = aws_cognito_user_pool_client.api.id
  }
}
