"""Reading a Prometheus counter or gauge in tests, through prometheus_client's public `collect()`."""

from __future__ import annotations

from typing import Any


def current(metric: Any) -> float:
    """The value of an unlabelled counter or gauge, or of one labelled child (`metric.labels(...)`)."""
    for family in metric.collect():
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                return float(sample.value)
    return 0.0
