# Tables and GSIs from infrastructure/definitions/tables.json: on-demand, point-in-time recovery,
# server-side encryption, deletion protection by variable, TTL on `ttl_attribute` where one is named.
resource "aws_dynamodb_table" "this" {
  #checkov:skip=CKV_AWS_119:encrypted at rest with the AWS-owned key; a customer-managed KMS key costs $1/month plus $0.03 per 10,000 requests on every read path for no access-control gain (IAM already limits each task to its tables)
  for_each = var.tables

  name                        = "${var.name_prefix}-${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = try(each.value.range_key, null)
  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = each.value.attributes
    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "global_secondary_index" {
    for_each = try(each.value.global_secondary_indexes, [])
    content {
      name            = global_secondary_index.value.name
      hash_key        = global_secondary_index.value.hash_key
      range_key       = try(global_secondary_index.value.range_key, null)
      projection_type = try(global_secondary_index.value.projection, "ALL")
    }
  }

  # Items carrying the table's TTL attribute (epoch seconds) are deleted by DynamoDB within about two
  # days of that time, at no cost: the books table's tombstones of deleted books.
  dynamic "ttl" {
    for_each = try(each.value.ttl_attribute, null) != null ? [each.value.ttl_attribute] : []
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags
}
