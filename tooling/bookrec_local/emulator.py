"""A moto server whose DynamoDB transactions are atomic and cost what they touch.

moto's TransactWriteItems deep-copies every table it touches to be able to
roll back (the cost grows with the table), and does not isolate concurrent
transactions from each other or from other writes (the server is threaded).
Here every write holds one lock, and a cancelled transaction is rolled back
item by item from copies of just the items it names.

moto also answers every Query by walking every item of the table and, on a
secondary index, sorting them all (seconds at 70K items; the change feed's
Query of a quiet shard walked an eighth of the books table every 30 s per
replica). Here a table's own Query reads just its partition; a secondary
index's Query looks its partition up in an index of that partition key, and
when it has a sort key condition (`changed_at > :position`), bisects the
partition's items kept in sort-key order, so it reads only the items it
answers with. moto then sorts and filters those few exactly as it would have
the whole table. Each write updates the indexes for the one item it names. A
Scan re-sorts the whole table for every page: the sorted items are kept until
the table's next write.

moto turns every response into JSON through a generic, model-driven
serializer that walks each attribute value (most of the emulator's time when
a service loads a table page by page). Items are already in DynamoDB's wire
shape, so the item lists of a response are written with json directly and the
serializer handles the rest of it. A projection converts the whole item to
Python and back once per projected name; names of top-level attributes (all
the services ask for) are picked from the item directly.

moto keeps every model instance it ever creates, for its dashboard; items are
created for every copy a read returns, so its memory grew with every Query
and Scan (gigabytes under load). Items are not kept here.

moto looks a flow log's whole S3 destination (`arn:aws:s3:::bucket/prefix/`, which AWS accepts) up as
a bucket name and refuses it; here the bucket alone is checked and the full destination kept.

Everything here relies on moto's private structure, so it runs on exactly one
moto version (REQUIRED_MOTO in bookrec_local.procs, pinned in constraints.txt)
and refuses any other with one line saying which it needs.

    python -m bookrec_local.emulator PORT [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import threading
import types
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from bookrec_local.procs import unsupported_moto

if (_problem := unsupported_moto()) is not None:
    # Checked before moto's internals are imported: on another version they may not exist.
    if __name__ == "__main__":
        raise SystemExit(_problem)
    raise ImportError(_problem)

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoResult
from sortedcontainers import SortedKeyList

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


class _Derived:
    """What is derived from a table's items, kept current write by write.

    Per table: the sorted items a Scan pages through (dropped on a write) and
    the partition-key indexes of its secondary-index queries (updated for just
    the item each write names).
    """

    sorted_items: ClassVar[dict[int, tuple[Table, list[Any]]]] = {}
    indexes: ClassVar[dict[int, dict[tuple[str, str | None], PartitionIndex]]] = {}

    @classmethod
    def wrote(cls, table: Table, hash_value: Any, range_value: Any) -> None:
        cls.sorted_items.pop(id(table), None)
        for index in cls.indexes.get(id(table), {}).values():
            index.update(hash_value, range_value)

    @classmethod
    def forget(cls, table: Table) -> None:
        """A write whose item could not be named: nothing derived from the table is trusted."""
        cls.sorted_items.pop(id(table), None)
        cls.indexes.pop(id(table), None)

    @classmethod
    def all_items(cls, table: Table) -> list[Any]:
        cached = cls.sorted_items.get(id(table))
        if cached is None or cached[0] is not table:
            cached = cls.sorted_items[id(table)] = (table, _all_items(table))
        return cached[1]

    @classmethod
    def index(cls, table: Table, attribute: str, sort_attribute: str | None) -> PartitionIndex:
        indexes = cls.indexes.setdefault(id(table), {})
        index = indexes.get((attribute, sort_attribute))
        if index is None or index.table is not table:
            index = indexes[(attribute, sort_attribute)] = PartitionIndex(table, attribute, sort_attribute)
        return index


def _sortable(value: Any) -> Any:
    """A key attribute's value as Python orders it the way DynamoDB does (S by code point, N by number,
    B by byte)."""
    if value.type == "N":
        return Decimal(value.value)
    if value.type == "B":
        raw = value.value
        return raw if isinstance(raw, bytes) else base64.b64decode(raw)
    return value.value


class PartitionIndex:
    """The items of a table grouped by the value of one attribute (a secondary index's partition key),
    each group also kept in the order of the index's sort key when it has one."""

    def __init__(self, table: Table, attribute: str, sort_attribute: str | None) -> None:
        self.table, self.attribute, self.sort_attribute = table, attribute, sort_attribute
        self.groups: dict[Any, dict[tuple[Any, Any], Any]] = {}
        self.ordered: dict[Any, SortedKeyList] = {}
        self.placed: dict[tuple[Any, Any], tuple[Any, Any]] = {}  # item key -> (group, its sort entry)
        for item in _items(table):
            self._add(item)

    def _add(self, item: Any) -> None:
        value = item.attrs.get(self.attribute)
        if value is None or value.type not in ("S", "N", "B"):
            return
        key = (item.hash_key, item.range_key)
        entry = None
        if self.sort_attribute is not None:
            sort_value = item.attrs.get(self.sort_attribute)
            if sort_value is None or sort_value.type not in ("S", "N", "B"):
                return  # not in the index: DynamoDB indexes only items with all its key attributes
            entry = (_sortable(sort_value), key)
            self.ordered.setdefault(value, SortedKeyList(key=lambda e: e[0])).add(entry)
        self.groups.setdefault(value, {})[key] = item
        self.placed[key] = (value, entry)

    def update(self, hash_value: Any, range_value: Any) -> None:
        key = (hash_value, range_value)
        value, entry = self.placed.pop(key, (None, None))
        if value is not None:
            group = self.groups[value]
            group.pop(key, None)
            if not group:
                del self.groups[value]
            if entry is not None:
                ordered = self.ordered[value]
                ordered.remove(entry)
                if not ordered:
                    del self.ordered[value]
        item = self.table.get_item(hash_value, range_value)
        if item is not None:
            self._add(item)

    def matching(self, value: Any, comparison: str | None = None, bounds: Sequence[Any] = ()) -> list[Any]:
        """The group's items; with a sort key condition, those its bounds can hold (a superset of the
        answer, by sort key only: moto compares each exactly afterwards)."""
        group = self.groups.get(value, {})
        if not comparison or self.sort_attribute is None or not bounds:
            return list(group.values())
        low, high = _range_of(comparison, [_sortable(b) for b in bounds])
        ordered = self.ordered.get(value)
        if ordered is None:
            return []
        low_at = 0 if low is None else ordered.bisect_key_left(low)
        high_at = len(ordered) if high is None else ordered.bisect_key_right(high)
        return [group[entry[1]] for entry in ordered[low_at:high_at]]


def _range_of(comparison: str, bounds: list[Any]) -> tuple[Any, Any]:
    """Inclusive (low, high) sort keys of a key condition, None for no bound (moto spells the operators
    both ways)."""
    first = bounds[0]
    if comparison in ("EQ", "="):
        return first, first
    if comparison in ("LT", "<", "LE", "<="):
        return None, first
    if comparison in ("GT", ">", "GE", ">=", "BEGINS_WITH"):  # a prefix: every key from it on; moto keeps
        return first, None                                      # those that begin with it
    if comparison == "BETWEEN":
        return first, bounds[1]
    return None, None


def _atomic(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    with _WRITES:
        named = _named_items(self, transact_items)
        before = [copy.deepcopy(table.get_item(h, r)) for table, h, r in named]
        try:
            return _transact_write_items(self, transact_items)
        except Exception:
            for (table, h, r), item in zip(named, before, strict=True):
                _restore(table, h, r, item)
                _Derived.wrote(table, h, r)
            raise


_OPERATION = {"put_item": "Put", "update_item": "Update", "delete_item": "Delete"}


def _locked(method):
    operation = _OPERATION[method.__name__]
    field = "Item" if operation == "Put" else "Key"

    def write(self, table_name, item_or_key, *args, **kwargs):
        with _WRITES:
            try:
                return method(self, table_name, item_or_key, *args, **kwargs)
            finally:
                try:
                    (table, hash_value, range_value), = _named_items(
                        self, [{operation: {"TableName": table_name, field: item_or_key}}])
                except Exception:  # noqa: BLE001 - a request moto refused; drop what may be stale
                    if table_name in self.tables:
                        _Derived.forget(self.tables[table_name])
                else:
                    _Derived.wrote(table, hash_value, range_value)
    return write


_query_scope = threading.local()
_all_items = Table.all_items
_query = Table.query


def _items(table: Table) -> list[Any]:
    return [item for group in table.items.values()
            for item in (group.values() if table.range_key_attr else (group,))]


def _index_candidates(self: Table) -> list[Any]:
    scope = getattr(_query_scope, "query", None)
    with _WRITES:  # the derived items change under writes: read them whole, between writes
        if scope is None or scope.table is not self:
            return list(_Derived.all_items(self))
        if scope.index_name is None:  # the table's own key: just its partition
            group = self.items.get(scope.hash_key)
            if group is None:
                return []
            return list(group.values()) if self.range_key_attr else [group]
        (first, wanted), *others = scope.hash_conditions
        candidates = _Derived.index(self, first, scope.sort_attribute).matching(
            wanted, scope.range_comparison, scope.range_objs)
    matching = [item for item in candidates
                if all((value := item.attrs.get(name)) is not None and value == other for name, other in others)]
    return sorted(matching, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def _sort_attribute(table: Table, index_name: str) -> str | None:
    for index in table.all_indexes():
        if index.name == index_name:
            ranges = [key["AttributeName"] for key in index.schema if key["KeyType"] == "RANGE"]
            return ranges[0] if len(ranges) == 1 else None  # several: moto's own walk narrows them
    return None


def _indexed_query(self: Table, hash_key: Any, range_comparison: Any, range_objs: Any, *args: Any,
                   **kwargs: Any) -> Any:
    conditions = kwargs.get("hash_key_conditions")
    index_name = kwargs.get("index_name", args[4] if len(args) > 4 else None)  # moto passes it by position
    if index_name and not conditions:
        return _query(self, hash_key, range_comparison, range_objs, *args, **kwargs)
    _query_scope.query = types.SimpleNamespace(
        table=self, index_name=index_name or None, hash_key=hash_key, hash_conditions=list(conditions or ()),
        sort_attribute=_sort_attribute(self, index_name) if index_name else None,
        range_comparison=range_comparison, range_objs=list(range_objs or ()))
    try:
        return _query(self, hash_key, range_comparison, range_objs, *args, **kwargs)
    finally:
        _query_scope.query = None


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


def _untracked_item(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


def _flow_logs_to_s3_prefixes(original):
    def create_flow_logs(self, *args: Any, **kwargs: Any) -> Any:
        destination = kwargs.get("log_destination") or ""
        if kwargs.get("log_destination_type") != "s3" or "/" not in destination.split(":", 5)[-1]:
            return original(self, *args, **kwargs)
        flow_logs, errors = original(self, *args, **{**kwargs, "log_destination": destination.split("/", 1)[0]})
        for flow_log in flow_logs:
            flow_log.log_destination = destination
        return flow_logs, errors
    return create_flow_logs


def patch() -> None:
    from moto.ec2.models.flow_logs import FlowLogsBackend

    # Each line replaces a piece of moto with the emulator's own (the module's docstring says why).
    FlowLogsBackend.create_flow_logs = (  # type: ignore[method-assign]  # patched: S3 prefixes allowed
        _flow_logs_to_s3_prefixes(FlowLogsBackend.create_flow_logs))
    Item.__new__ = staticmethod(_untracked_item)  # type: ignore[method-assign]  # patched: items not kept
    Item.project = _project_top_level  # type: ignore[method-assign]  # patched: top-level projections
    # The replacement takes moto's DynamoResult (its only caller), not any ActionResult as the base declares.
    DynamoResult.execute_result = _items_as_json  # type: ignore[method-assign, assignment]  # patched
    Table.all_items = _index_candidates  # type: ignore[method-assign]  # patched: indexed candidates
    Table.query = _indexed_query  # type: ignore[method-assign]  # patched: a Query reads its partition
    # moto's DynamoDB models module sees a `copy` whose deepcopy leaves whole tables alone.
    dynamodb_models.copy = types.SimpleNamespace(  # type: ignore[assignment]  # patched: a stand-in module
        deepcopy=_deepcopy_except_tables)
    DynamoDBBackend.transact_write_items = _atomic  # type: ignore[method-assign]  # patched: atomic
    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    parser = argparse.ArgumentParser(prog="python -m bookrec_local.emulator", description=__doc__.split("\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 in a container")
    args = parser.parse_args(argv)
    patch()
    moto_main(["-H", args.host, "-p", str(args.port)])


if __name__ == "__main__":
    main()
