"""bookrec search service."""
