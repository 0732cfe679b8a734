"""bookrec ratings service."""
