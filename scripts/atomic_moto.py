"""A moto server whose DynamoDB transactions are atomic and cost what they touch.

moto's TransactWriteItems deep-copies every table it touches to be able to
roll back (the cost grows with the table), and does not isolate concurrent
transactions from each other or from other writes (the server is threaded).
Here every write holds one lock, and a cancelled transaction is rolled back
item by item from copies of just the items it names.

    python -m scripts.atomic_moto PORT
"""

from __future__ import annotations

import copy
import sys
import threading
import types
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

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


def _locked(method):
    def write(self, *args, **kwargs):
        with _WRITES:
            return method(self, *args, **kwargs)
    return write


def patch() -> None:
    dynamodb_models.copy = types.SimpleNamespace(deepcopy=_deepcopy_except_tables)
    DynamoDBBackend.transact_write_items = _atomic
    for name in ("put_item", "update_item", "delete_item"):
        setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))


if __name__ == "__main__":
    from moto.server import main

    patch()
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
