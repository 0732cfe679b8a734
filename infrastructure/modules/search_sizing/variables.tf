variable "catalogue_books" {
  description = "Books the search index holds (the catalogue this deployment is sized for)."
  type        = number
  validation {
    condition     = var.catalogue_books >= 0 && floor(var.catalogue_books) == var.catalogue_books
    error_message = "catalogue_books is a whole number of books, 0 or more."
  }
  validation {
    condition     = var.catalogue_books <= local.most_books
    error_message = "One search replica (or builder) holds at most ${local.most_books} books on the largest Fargate task (16 vCPU, 120 GB): beyond that the index must be split across nodes (services/search/README.md, \"The ceiling\")."
  }
}

variable "replica_floor" {
  description = "The smallest replica task (services.json's search cpu and memory): what request load needs whatever the catalogue."
  type        = object({ cpu = number, memory = number })
}

variable "builder_floor" {
  description = "The smallest builder task (services.json's search builder cpu and memory)."
  type        = object({ cpu = number, memory = number })
}
