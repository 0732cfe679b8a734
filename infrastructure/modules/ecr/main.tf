# One image repository per service: scanned on push, old untagged images expired.
resource "aws_ecr_repository" "this" {
  #checkov:skip=CKV_AWS_136:images are encrypted with ECR's AES-256 default; they hold no secrets (tokens come from Secrets Manager at run time), so a KMS key adds cost only
  for_each = toset(var.services)

  name                 = "${var.name_prefix}/${each.key}"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each   = aws_ecr_repository.this
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the last ${var.keep_images} images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = var.keep_images }
      action       = { type = "expire" }
    }]
  })
}
