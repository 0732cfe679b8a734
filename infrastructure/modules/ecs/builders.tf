# Builders: per services.json entry with a `builder`, a one-shot Fargate task (`python -m <module>`,
# the service's image) that builds the service's derived state from the tables and writes it under
# the service's artifact prefix, started every `schedule_minutes` by EventBridge Scheduler. Replicas
# only read the prefix; a Redis lease in the builder stops overlapping runs.
locals {
  builders = { for name, spec in var.services : name => spec if try(spec.builder, null) != null }
  builder_environment = { for name, spec in local.builders : name => merge(
    { AWS_REGION = var.region, LOG_LEVEL = "INFO", ARTIFACT_BUCKET = var.artifact_bucket, ARTIFACT_PREFIX = spec.artifacts },
    var.table_env,
    try(spec.redis, false) ? { REDIS_URL = var.redis_url } : {},
    spec.builder.environment,
  ) }
}

resource "aws_security_group" "builder" {
  #checkov:skip=CKV2_AWS_5:attached to the builder tasks by the schedule's network_configuration (aws_scheduler_schedule.builder), which checkov does not follow
  for_each    = local.builders
  name        = "${var.name_prefix}-${each.key}-builder"
  description = "${each.key} builder tasks: nothing in, HTTPS and the VPC out"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "builder_https" {
  for_each          = local.builders
  description       = "HTTPS to AWS APIs (DynamoDB, S3, ECR, CloudWatch Logs, Secrets Manager)"
  security_group_id = aws_security_group.builder[each.key].id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "builder_vpc" {
  for_each          = local.builders
  description       = "Inside the VPC: Redis (the build lease), DNS"
  security_group_id = aws_security_group.builder[each.key].id
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "-1"
}

resource "aws_ecs_task_definition" "builder" {
  for_each                 = local.builders
  family                   = "${var.name_prefix}-${each.key}-builder"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(each.value.builder.cpu)
  memory                   = tostring(each.value.builder.memory)
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.builder_role_arns[each.key]
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  # A builder that writes its artifact to a file first (search's snapshot) says how much disk it needs
  # (GiB, 21-200); without it, Fargate's 20 GiB.
  dynamic "ephemeral_storage" {
    for_each = try([each.value.builder.ephemeral_storage], [])
    content {
      size_in_gib = ephemeral_storage.value
    }
  }
  container_definitions = jsonencode([{
    name        = "${each.key}-builder"
    image       = "${var.repository_urls[each.key]}:${var.image_tag}"
    essential   = true
    command     = ["python", "-m", each.value.builder.module]
    environment = [for k, v in local.builder_environment[each.key] : { name = k, value = v }]
    secrets     = [for k, arn in lookup(var.secrets, each.key, {}) : { name = k, valueFrom = arn } if k == "REDIS_AUTH_TOKEN"]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_names[each.key]
        awslogs-region        = var.region
        awslogs-stream-prefix = "${each.key}-builder"
      }
    }
    stopTimeout = 30
  }])
  tags = var.tags
}

# Every schedule_minutes, flexible window off. A run that cannot start is retried for at most one
# interval (the next run would do the same work); overlapping runs are stopped by the builder's lease.
resource "aws_scheduler_schedule" "builder" {
  #checkov:skip=CKV_AWS_297:the schedule holds only the task definition, subnets and group ids (no secrets); a customer-managed KMS key costs $1/month plus key administration for nothing to protect
  for_each                     = { for name, spec in local.builders : name => spec if var.builder_schedules }
  name                         = "${var.name_prefix}-${each.key}-builder"
  description                  = "Run the ${each.key} builder (${each.value.builder.module})"
  schedule_expression          = each.value.builder.schedule_minutes == 1 ? "rate(1 minute)" : "rate(${each.value.builder.schedule_minutes} minutes)"
  schedule_expression_timezone = "UTC"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_ecs_cluster.this.arn
    role_arn = var.scheduler_role_arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.builder[each.key].arn
      launch_type         = "FARGATE"
      task_count          = 1

      network_configuration {
        subnets          = var.private_subnet_ids
        security_groups  = [aws_security_group.builder[each.key].id]
        assign_public_ip = false
      }
    }

    retry_policy {
      maximum_event_age_in_seconds = max(60, each.value.builder.schedule_minutes * 60)
      maximum_retry_attempts       = 3
    }
  }
}
