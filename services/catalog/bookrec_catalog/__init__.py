"""bookrec's catalogue rules, shared by the services and the ETL: ids, the text normaliser and search terms,
keys, rating aggregates (catalog), the change feed's stamps and tombstones (changes), and the DynamoDB item
encoding (dynamo). Pure: no web framework, no async clients, no I/O."""
