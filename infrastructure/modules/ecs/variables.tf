variable "name_prefix" {
  type = string
}

variable "region" {
  type = string
}

variable "services" {
  description = "The decoded infrastructure/definitions/services.json."
  type        = any
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  description = "The VPC's range: the tasks may reach anything inside it (Redis, internal calls, DNS)."
  type        = string
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "alb_security_group_id" {
  type = string
}

variable "alb_arn_suffix" {
  type = string
}

variable "target_group_arns" {
  type = map(string)
}

variable "target_group_arn_suffixes" {
  type = map(string)
}

variable "repository_urls" {
  type = map(string)
}

variable "image_tag" {
  description = "Image tag to run (the git sha written by scripts/deploy-images.sh)."
  type        = string
  default     = "latest"
}

variable "execution_role_arn" {
  type = string
}

variable "task_role_arns" {
  type = map(string)
}

variable "log_group_names" {
  type = map(string)
}

variable "table_env" {
  description = "BOOKS_TABLE, RATINGS_TABLE, ... for every container."
  type        = map(string)
}

variable "redis_url" {
  type    = string
  default = ""
}

variable "internal_dns_names" {
  description = "service => private DNS name, for the services others call."
  type        = map(string)
  default     = {}
}

variable "registry_arns" {
  description = "service => Cloud Map service ARN to register its tasks in."
  type        = map(string)
  default     = {}
}

variable "extra_environment" {
  description = "service => extra plain environment variables."
  type        = map(map(string))
  default     = {}
}

variable "secrets" {
  description = "service => { VARIABLE = secret ARN } injected by ECS."
  type        = map(map(string))
  default     = {}
}

variable "desired_count" {
  type    = number
  default = 2
}

variable "autoscaling" {
  type    = bool
  default = true
}

variable "min_tasks" {
  type    = number
  default = 2
}

variable "max_tasks" {
  type    = number
  default = 10
}

variable "cpu_target" {
  type    = number
  default = 60
}

variable "requests_per_target" {
  type    = number
  default = 1000
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "artifact_bucket" {
  description = "The artifact bucket: ARTIFACT_BUCKET of the services with `artifacts` and of the builders."
  type        = string
  default     = ""
}

variable "builder_role_arns" {
  description = "service => task role of its builder (modules/iam)."
  type        = map(string)
  default     = {}
}

variable "scheduler_role_arn" {
  description = "The role EventBridge Scheduler assumes to run the builder tasks."
  type        = string
  default     = ""
}

variable "builder_schedules" {
  description = "Create the EventBridge Scheduler schedules that run the builders (false only where the emulator cannot)."
  type        = bool
  default     = true
}
