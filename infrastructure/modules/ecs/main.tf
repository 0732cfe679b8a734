# The ECS cluster and, per entry of services.json, a Fargate task definition and service in the
# private subnets behind its ALB target group, with a circuit breaker that rolls back, target-tracking
# autoscaling on CPU and on ALB requests per target, and desired_count left alone after creation.
resource "aws_ecs_cluster" "this" {
  name = var.name_prefix
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = var.tags
}

resource "aws_security_group" "service" {
  for_each    = var.services
  name        = "${var.name_prefix}-${each.key}"
  description = "${each.key} tasks: the ALB and their callers in, HTTPS and the VPC out"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_alb" {
  for_each                     = var.services
  description                  = "${each.key}'s port from the ALB (requests and health checks)"
  security_group_id            = aws_security_group.service[each.key].id
  referenced_security_group_id = var.alb_security_group_id
  from_port                    = each.value.port
  to_port                      = each.value.port
  ip_protocol                  = "tcp"
}

locals {
  # caller => callee pairs from the `calls` lists: internal traffic allowed between their groups.
  calls = merge([for caller, spec in var.services : {
    for callee in try(spec.calls, []) : "${caller}-${callee}" => { caller = caller, callee = callee }
  }]...)
}

resource "aws_vpc_security_group_ingress_rule" "internal_calls" {
  for_each                     = local.calls
  description                  = "${each.value.callee}'s port from ${each.value.caller} (internal calls)"
  security_group_id            = aws_security_group.service[each.value.callee].id
  referenced_security_group_id = aws_security_group.service[each.value.caller].id
  from_port                    = var.services[each.value.callee].port
  to_port                      = var.services[each.value.callee].port
  ip_protocol                  = "tcp"
}

# Out: HTTPS anywhere (ECR, CloudWatch Logs, Secrets Manager, Cognito's JWKS, DynamoDB through its
# gateway endpoint) and anything inside the VPC (Redis, internal calls, DNS).
resource "aws_vpc_security_group_egress_rule" "https" {
  for_each          = var.services
  description       = "HTTPS to AWS APIs and the JWKS"
  security_group_id = aws_security_group.service[each.key].id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "vpc" {
  for_each          = var.services
  description       = "Inside the VPC: Redis, internal calls, DNS"
  security_group_id = aws_security_group.service[each.key].id
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "-1"
}

locals {
  environment = { for name, spec in var.services : name => merge(
    spec.environment,
    { PORT = tostring(spec.port), AWS_REGION = var.region, LOG_LEVEL = "INFO" },
    var.table_env,
    try(spec.redis, false) ? { REDIS_URL = var.redis_url } : {},
    try(spec.artifacts, null) != null ? { ARTIFACT_BUCKET = var.artifact_bucket, ARTIFACT_PREFIX = spec.artifacts } : {},
    { for peer in try(spec.calls, []) : "${upper(peer)}_URL" => "http://${var.internal_dns_names[peer]}:${var.services[peer].port}" },
    lookup(var.extra_environment, name, {}),
  ) }
}

resource "aws_ecs_task_definition" "service" {
  for_each                 = var.services
  family                   = "${var.name_prefix}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(each.value.cpu)
  memory                   = tostring(each.value.memory)
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arns[each.key]
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  container_definitions = jsonencode([{
    name         = each.key
    image        = "${var.repository_urls[each.key]}:${var.image_tag}"
    essential    = true
    portMappings = [{ containerPort = each.value.port, protocol = "tcp" }]
    environment  = [for k, v in local.environment[each.key] : { name = k, value = v }]
    secrets      = [for k, arn in lookup(var.secrets, each.key, {}) : { name = k, valueFrom = arn }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_names[each.key]
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
    healthCheck = {
      command     = ["CMD", "python", "-c", "import os,urllib.request;urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}${each.value.health_path}',timeout=2)"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    stopTimeout = 30
  }])
  tags = var.tags
}

resource "aws_ecs_service" "service" {
  for_each                          = var.services
  name                              = each.key
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.service[each.key].arn
  desired_count                     = var.desired_count
  launch_type                       = "FARGATE"
  health_check_grace_period_seconds = 60

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.service[each.key].id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.target_group_arns[each.key]
    container_name   = each.key
    container_port   = each.value.port
  }

  dynamic "service_registries" {
    for_each = contains(keys(var.registry_arns), each.key) ? [var.registry_arns[each.key]] : []
    content {
      registry_arn = service_registries.value
    }
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    # Autoscaling owns the task count after creation; an apply must not reset it.
    ignore_changes = [desired_count]
  }

  tags = var.tags
}

resource "aws_appautoscaling_target" "service" {
  for_each           = { for name, spec in var.services : name => spec if var.autoscaling }
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.service[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each           = aws_appautoscaling_target.service
  name               = "${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = each.value.service_namespace
  resource_id        = each.value.resource_id
  scalable_dimension = each.value.scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value = var.cpu_target
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  for_each           = aws_appautoscaling_target.service
  name               = "${each.key}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = each.value.service_namespace
  resource_id        = each.value.resource_id
  scalable_dimension = each.value.scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value = var.requests_per_target
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${var.alb_arn_suffix}/${var.target_group_arn_suffixes[each.key]}"
    }
  }
}
