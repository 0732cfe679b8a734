"""A moto server whose DynamoDB transactions are atomic and cost what they touch.

moto's TransactWriteItems deep-copies every table it touches to be able to
roll back (the cost grows with the table), and does not isolate concurrent
transactions from each other or from other writes (the server is threaded).
Here every write holds one lock, and a cancelled transaction is rolled back
item by item from copies of just the items it names.

moto also answers a Query on a secondary index by sorting every item of the
table and comparing each with the key condition (seconds at 70K items). Here
the items are looked up by the index's partition key first, and only the
matching items are sorted, in the same order moto would give them; the
partition-key index is kept until the next write. A Scan re-sorts the whole
table for every page: the sorted items are kept until the next write too.

moto turns every response into JSON through a generic, model-driven
serializer that walks each attribute value (most of the emulator's time when
a service loads a table page by page). Items are already in DynamoDB's wire
shape, so the item lists of a response are written with json directly and the
serializer handles the rest of it. A projection converts the whole item to
Python and back once per projected name; names of top-level attributes (all
the services ask for) are picked from the item directly.

    python -m scripts.atomic_moto PORT
"""

from __future__ import annotations

import base64
import copy
import json
import sys
import threading
import types
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoResult

_WRITES = threading.RLock()
_transact_write_items = DynamoDBBackend.transact_write_items


def _deepcopy_except_tables(value: Any, memo: dict | None = None) -> Any:
    # moto copies whole tables only for its own rollback, which _atomic replaces.
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _named_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple[Table, Any, Any]]:
    named = []
    for entry in transact_items:
        (kind, op), = entry.items()
        table = backend.get_table(op["TableName"])
        key = op["Key"] if kind != "Put" else {
            name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr) if name}
        hash_value, range_value = backend.get_keys_value(table, key)
        named.append((table, hash_value, range_value))
    return named


def _restore(table: Table, hash_value: Any, range_value: Any, item: Any) -> None:
    if table.range_key_attr:
        if item is None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items[hash_value][range_value] = item
    elif item is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = item


class _Generation:
    """Counts writes: what was derived from the items before a write is stale after it."""

    value = 0

    @classmethod
    def bump(cls) -> None:
        cls.value += 1


def _atomic(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    with _WRITES:
        named = _named_items(self, transact_items)
        before = [copy.deepcopy(table.get_item(h, r)) for table, h, r in named]
        try:
            return _transact_write_items(self, transact_items)
        except Exception:
            for (table, h, r), item in zip(named, before):
                _restore(table, h, r, item)
            raise
        finally:
            _Generation.bump()


def _locked(method):
    def write(self, *args, **kwargs):
        with _WRITES:
            try:
                return method(self, *args, **kwargs)
            finally:
                _Generation.bump()
    return write


_query_scope = threading.local()
_all_items = Table.all_items
_query = Table.query


_derived: dict[tuple[int, str], tuple[Table, int, Any]] = {}


def _items(table: Table) -> list[Any]:
    return [item for group in table.items.values()
            for item in (group.values() if table.range_key_attr else (group,))]


def _cached(key: tuple[int, str], table: Table, build: Any) -> Any:
    """What `build` derives from the table's items, kept until the next write."""
    generation = _Generation.value
    cached = _derived.get(key)
    if cached is None or cached[0] is not table or cached[1] != generation:
        cached = (table, generation, build())
        _derived[key] = cached
    return cached[2]


def _partition_index(table: Table, attribute: str) -> dict[tuple[str, Any], list[Any]]:
    index: dict[tuple[str, Any], list[Any]] = {}
    for item in _items(table):
        value = item.attrs.get(attribute)
        if value is not None and value.type in ("S", "N", "B"):
            index.setdefault((value.type, value.value), []).append(item)
    return index


def _index_candidates(self: Table) -> list[Any]:
    scope = getattr(_query_scope, "conditions", None)
    if scope is None or scope[0] is not self:
        return list(_cached((id(self), ""), self, lambda: _all_items(self)))
    (first, wanted), *others = scope[1]
    index = _cached((id(self), first), self, lambda: _partition_index(self, first))
    matching = [item for item in index.get((wanted.type, wanted.value), ())
                if all((value := item.attrs.get(name)) is not None and value.type == other.type
                       and value.value == other.value for name, other in others)]
    return sorted(matching, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def _indexed_query(self: Table, *args: Any, **kwargs: Any) -> Any:
    conditions = kwargs.get("hash_key_conditions")
    index_name = kwargs.get("index_name", args[7] if len(args) > 7 else None)  # moto passes it by position
    if not index_name or not conditions:
        return _query(self, *args, **kwargs)
    _query_scope.conditions = (self, list(conditions))
    try:
        return _query(self, *args, **kwargs)
    finally:
        _query_scope.conditions = None


_execute_result = DynamoResult.execute_result
_ITEM_FIELDS = ("Items", "Item", "Responses")  # Scan/Query, GetItem, BatchGetItem: attribute values only


def _wire_bytes(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()  # B and BS values, as the serializer encodes them
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _items_as_json(self: DynamoResult, context: Any) -> Any:
    result = self.result
    if not isinstance(result, dict) or not any(field in result for field in _ITEM_FIELDS):
        return _execute_result(self, context)
    rest = DynamoResult({key: value for key, value in result.items() if key not in _ITEM_FIELDS})
    status, headers, body = _execute_result(rest, context)
    payload = json.loads(body or "{}")
    payload.update({field: result[field] for field in _ITEM_FIELDS if field in result})
    return status, headers, json.dumps(payload, default=_wire_bytes, separators=(",", ":"))


_project = Item.project


def _project_top_level(self: Item, projection_expressions: list[list[str]]) -> Item:
    if any(len(path) != 1 or "[" in path[0] for path in projection_expressions):
        return _project(self, projection_expressions)  # nested paths and list elements: moto's own way
    projected = Item(self.hash_key, self.range_key, {})
    # dict.update: the values are attributes of an item that already fit; moto re-sums the size per key.
    dict.update(projected.attrs, {path[0]: self.attrs[path[0]] for path in projection_expressions
                                  if path[0] in self.attrs})
    return projected


def patch() -> None:
    Item.project = _project_top_level
    DynamoResult.execute_result = _items_as_json
    Table.all_items = _index_candidates
    Table.query = _indexed_query
    dynamodb_models.copy = types.SimpleNamespace(deepcopy=_deepcopy_except_tables)
    DynamoDBBackend.transact_write_items = _atomic
    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))


if __name__ == "__main__":
    from moto.server import main

    patch()
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
