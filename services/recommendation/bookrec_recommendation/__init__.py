"""bookrec recommendation service."""
