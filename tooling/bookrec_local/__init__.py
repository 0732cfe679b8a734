"""Local tooling: the stack runner, the local ALB, definitions readers."""
