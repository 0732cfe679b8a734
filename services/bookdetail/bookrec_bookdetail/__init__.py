"""bookrec bookdetail service."""
