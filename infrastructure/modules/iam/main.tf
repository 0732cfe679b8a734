# The task execution role (pull images, write logs, read the internal-token secret) and one task role
# per service, allowed only the DynamoDB actions its access level in services.json needs, on its own
# tables and their indexes. Replicas only read their artifact prefix; a builder role per service with
# a builder may Scan its builder tables and write that prefix (and tag what it supersedes); the
# scheduler role may only run the builder task definitions and pass their roles. No wildcard actions.
data "aws_caller_identity" "this" {}

data "aws_partition" "this" {}

locals {
  actions = {
    # Replicas: point reads and index queries, never a Scan (derived state comes from the builder).
    query  = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable"]
    read   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:DescribeTable"]
    update = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"]
    write  = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"]
  }
  assume_ecs_tasks = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ecs-tasks.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-task-execution"
  assume_role_policy = local.assume_ecs_tasks
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "execution_secrets" {
  count = length(var.secret_arns) > 0 ? 1 : 0
  name  = "read-task-secrets"
  role  = aws_iam_role.execution.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["secretsmanager:GetSecretValue"], Resource = var.secret_arns }]
  })
}

resource "aws_iam_role" "task" {
  for_each           = var.services
  name               = "${var.name_prefix}-${each.key}-task"
  assume_role_policy = local.assume_ecs_tasks
  tags               = var.tags
}

resource "aws_iam_role_policy" "task_tables" {
  for_each = var.services
  name     = "tables"
  role     = aws_iam_role.task[each.key].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.table_statements["task-${each.key}"]
  })
}

# Replicas read their own artifact prefix: GetObject on it, and ListBucket on the bucket so that a
# missing manifest (no build yet) answers 404 rather than 403. S3 checks ListBucket for a GetObject of a
# missing key without an s3:prefix in the request context, so a prefix condition would turn that 404
# into 403: listing is granted on the bucket, which holds artifact key names and nothing else. Nothing
# may be written.
locals {
  artifact_readers = { for name, spec in var.services : name => spec.artifacts if try(spec.artifacts, null) != null }
  builders         = { for name, spec in var.services : name => spec if try(spec.builder, null) != null }
  account          = data.aws_caller_identity.this.account_id
  partition        = data.aws_partition.this.partition
  builder_families = { for name, _ in local.builders : name => "arn:${local.partition}:ecs:${var.region}:${local.account}:task-definition/${var.name_prefix}-${name}-builder" }
  cluster_arn      = "arn:${local.partition}:ecs:${var.region}:${local.account}:cluster/${var.name_prefix}"
  list_artifacts   = { Sid = "ListArtifacts", Effect = "Allow", Action = ["s3:ListBucket"], Resource = [var.artifact_bucket_arn] }
  # A role's {table: level} map as statements: each table and its indexes, the level's actions only.
  table_statements = { for role, tables in merge(
    { for name, spec in var.services : "task-${name}" => spec.tables },
    { for name, spec in local.builders : "builder-${name}" => spec.builder.tables },
    ) : role => [for table, level in tables : {
      Sid      = "${replace(title(table), "-", "")}${title(level)}"
      Effect   = "Allow"
      Action   = local.actions[level]
      Resource = [var.table_arns[table], "${var.table_arns[table]}/index/*"]
  }] }
}

resource "aws_iam_role_policy" "task_artifacts" {
  for_each = local.artifact_readers
  name     = "artifacts"
  role     = aws_iam_role.task[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadOwnArtifacts"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["${var.artifact_bucket_arn}/${each.value}/*"]
      },
      local.list_artifacts,
    ]
  })
}

# One builder role per service with a builder: its builder tables at their levels (read: Scan
# included), and read/write of its own artifact prefix only.
resource "aws_iam_role" "builder" {
  for_each           = local.builders
  name               = "${var.name_prefix}-${each.key}-builder"
  assume_role_policy = local.assume_ecs_tasks
  tags               = var.tags
}

resource "aws_iam_role_policy" "builder_tables" {
  for_each = local.builders
  name     = "tables"
  role     = aws_iam_role.builder[each.key].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.table_statements["builder-${each.key}"]
  })
}

resource "aws_iam_role_policy" "builder_artifacts" {
  for_each = local.builders
  name     = "artifacts"
  role     = aws_iam_role.builder[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadWriteOwnArtifacts"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"]
        Resource = ["${var.artifact_bucket_arn}/${each.value.artifacts}/*"]
      },
      local.list_artifacts,
    ]
  })
}

# EventBridge Scheduler starts the builders: RunTask of the builder task definitions (any revision)
# on this cluster only, and PassRole of exactly the roles those tasks use, only to ECS tasks.
resource "aws_iam_role" "scheduler" {
  count = length(local.builders) > 0 ? 1 : 0
  name  = "${var.name_prefix}-builder-scheduler"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "scheduler" {
  count = length(local.builders) > 0 ? 1 : 0
  name  = "run-builders"
  role  = aws_iam_role.scheduler[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "RunBuilderTasks"
        Effect    = "Allow"
        Action    = ["ecs:RunTask"]
        Resource  = [for family in values(local.builder_families) : "${family}:*"]
        Condition = { ArnEquals = { "ecs:cluster" = local.cluster_arn } }
      },
      {
        Sid       = "PassBuilderRoles"
        Effect    = "Allow"
        Action    = ["iam:PassRole"]
        Resource  = concat([for r in aws_iam_role.builder : r.arn], [aws_iam_role.execution.arn])
        Condition = { StringEquals = { "iam:PassedToService" = "ecs-tasks.amazonaws.com" } }
      },
    ]
  })
}
