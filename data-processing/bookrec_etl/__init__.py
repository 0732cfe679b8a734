"""Open Library and goodbooks-10k import for bookrec."""
