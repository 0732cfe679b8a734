# The public ALB. Listener rules are generated from infrastructure/definitions/routes.json:
# forward rules to the service's target group, fixed-response rules (internal endpoints) answer 404.
# Anything unmatched gets the default fixed 404. Internal endpoints are never forwarded.
locals {
  forward_rules = { for r in var.routes.rules : tostring(r.priority) => r if try(r.service, null) != null }
  fixed_rules   = { for r in var.routes.rules : tostring(r.priority) => r if try(r.fixed_response, null) != null }
  problem       = jsonencode({ type = "urn:bookrec:problem:no_route", title = "Not found", status = 404, code = "no_route" })
}

resource "aws_security_group" "alb" {
  name        = "${var.name_prefix}-alb"
  description = "Public HTTP(S) to the ALB"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "http" {
  for_each          = toset(var.ingress_cidrs)
  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = each.value
  from_port         = 80
  to_port           = 80
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_ingress_rule" "https" {
  for_each          = var.certificate_arn == "" ? toset([]) : toset(var.ingress_cidrs)
  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = each.value
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "to_vpc" {
  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "-1"
}

resource "aws_lb" "this" {
  name               = "${var.name_prefix}-alb"
  load_balancer_type = "application"
  subnets            = var.public_subnet_ids
  security_groups    = [aws_security_group.alb.id]
  # Below the services' keep-alive (granian keeps idle connections 60 s), so the ALB never reuses a closed one.
  idle_timeout               = var.idle_timeout
  drop_invalid_header_fields = true
  tags                       = var.tags
}

resource "aws_lb_target_group" "service" {
  for_each    = var.services
  name        = substr("${var.name_prefix}-${each.key}", 0, 32)
  port        = each.value.port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  health_check {
    path                = each.value.health_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  deregistration_delay = 30
  tags                 = var.tags
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = local.problem
      status_code  = "404"
    }
  }
}

resource "aws_lb_listener" "https" {
  count             = var.certificate_arn == "" ? 0 : 1
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = local.problem
      status_code  = "404"
    }
  }
}

locals {
  listeners = concat([aws_lb_listener.http.arn], aws_lb_listener.https[*].arn)
  forward_by_listener = merge([for i, l in local.listeners : {
    for p, r in local.forward_rules : "${i}-${p}" => { listener = l, rule = r }
  }]...)
  fixed_by_listener = merge([for i, l in local.listeners : {
    for p, r in local.fixed_rules : "${i}-${p}" => { listener = l, rule = r }
  }]...)
}

resource "aws_lb_listener_rule" "forward" {
  for_each     = local.forward_by_listener
  listener_arn = each.value.listener
  priority     = each.value.rule.priority

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.service[each.value.rule.service].arn
  }

  condition {
    path_pattern {
      values = each.value.rule.path_patterns
    }
  }
}

resource "aws_lb_listener_rule" "fixed" {
  for_each     = local.fixed_by_listener
  listener_arn = each.value.listener
  priority     = each.value.rule.priority

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = local.problem
      status_code  = tostring(each.value.rule.fixed_response.status_code)
    }
  }

  condition {
    path_pattern {
      values = each.value.rule.path_patterns
    }
  }
}
