output "replica" {
  description = "The search replica task: cpu units and memory (MiB)."
  value       = local.replica
}

output "builder" {
  description = "The search builder task: cpu units and memory (MiB)."
  value       = local.builder
}

output "builder_ephemeral_storage" {
  description = "The search builder task's ephemeral storage (GiB, 21-200): its snapshot file, the image and the rest."
  value       = local.builder_ephemeral_storage
}

output "needs" {
  description = "Memory (MiB) each task needs for the catalogue, before rounding to a Fargate size."
  value       = { replica = local.replica_need, builder = local.builder_need }
}
