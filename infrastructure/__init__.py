"""Infrastructure as code: Terraform modules and environments, and the helper that runs them."""
