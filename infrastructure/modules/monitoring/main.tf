# Log groups with retention, alarms on the ALB's 5xx and target latency, and one dashboard.
resource "aws_cloudwatch_log_group" "service" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest with its own keys; a customer-managed KMS key ($1/month plus requests, and key policy administration) buys nothing for logs that carry no tokens
  #checkov:skip=CKV_AWS_338:application logs are for debugging recent behaviour: kept log_retention_days (30 in dev) to bound storage cost, not a year
  for_each          = toset(var.services)
  name              = "/${var.name_prefix}/${each.key}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  alarm_name          = "${var.name_prefix}-alb-5xx"
  alarm_description   = "Targets answered 5xx more than ${var.max_5xx_per_minute} times a minute"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 3
  threshold           = var.max_5xx_per_minute
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "target_latency" {
  for_each            = var.target_group_arn_suffixes
  alarm_name          = "${var.name_prefix}-${each.key}-latency-p95"
  alarm_description   = "${each.key}: p95 target response time above ${var.max_p95_seconds}s"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = each.value }
  extended_statistic  = "p95"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.max_p95_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({
    widgets = [
      { type = "metric", x = 0, y = 0, width = 12, height = 6, properties = {
        title = "Requests and 5xx", region = var.region, stat = "Sum", period = 60,
        metrics = [["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix],
        [".", "HTTPCode_Target_5XX_Count", ".", "."]]
      } },
      { type = "metric", x = 12, y = 0, width = 12, height = 6, properties = {
        title = "Target p95 latency", region = var.region, stat = "p95", period = 60,
        metrics = [for name, tg in var.target_group_arn_suffixes :
        ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, "TargetGroup", tg, { label = name }]]
      } },
    ]
  })
}
