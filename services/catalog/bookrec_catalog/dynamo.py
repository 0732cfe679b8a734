"""Plain Python values <-> DynamoDB attribute values, at the store boundary only.

Numbers come back as int when integral, float otherwise, so no caller ever
meets `Decimal` or `{"S": ...}`.
"""

from __future__ import annotations

from typing import Any


def to_attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float)):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, dict):
        return {"M": {str(k): to_attribute(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [to_attribute(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def to_item(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Serialise a record, dropping None and empty strings (DynamoDB keys reject them)."""
    return {k: to_attribute(v) for k, v in record.items() if v is not None and v != ""}


def from_attribute(attribute: dict[str, Any]) -> Any:
    (kind, value), = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return float(value) if any(c in value for c in ".eE") else int(value)
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "SS":
        return list(value)
    if kind == "NS":
        return [from_attribute({"N": v}) for v in value]
    raise TypeError(f"unsupported DynamoDB attribute type {kind}")


def from_item(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {k: from_attribute(v) for k, v in item.items()}
