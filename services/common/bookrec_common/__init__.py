"""Shared building blocks of the bookrec services."""
