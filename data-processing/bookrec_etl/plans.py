"""What loading one line does to what is stored: the DynamoDB write it takes, planned from the stored item
as read. Pure: no I/O (writes.py reads, sends and retries).

Books (the aggregate's parts: aggregates.py):
- no item: the whole line is put, with the aggregate it carries (goodbooks counts, a source's imported
  stars, or zero), conditioned on there being no item;
- a tombstone: the whole line is put over it, conditioned on the tombstone as read; the book's ratings,
  kept in the ratings table while it was deleted, are then counted into its aggregate (reconcile);
- a live book: one UpdateItem of catalogue attributes only (SET what the line changes, REMOVE what it no
  longer has), conditioned on the book being live. Its aggregate is never overwritten: when the line's
  imported figure differs from the recorded one, the distribution moves by the difference, conditioned
  on the distribution and imported part as read (a reader's rating meanwhile fails it: read again);
  a line whose source says nothing about ratings (no `imported_distribution`) leaves it as it is;
- a live book that records no imported part (legacy) and a line that gives one: catalogue only; its rows
  are then counted and the line's imported part adopted (reconcile);
- nothing different: no write at all (no change-feed stamp, no write units).
Shelf counts (shelf_counts.py) have the same two parts: a load writes `shelf_counts` only through the
imported part (`imported_shelf_counts`, the reading-log dump's): a new or revived book's Put holds the
line's imported part as its counts (a line's own `shelf_counts` is dropped: an exported table's counts
have no shelves behind them here); a live book's counts move by the difference of the imported part,
conditioned on both maps as read (a reader's shelving meanwhile fails it); a line without one leaves
them as they are. Readers' entries are counted in only by reconcile (repair_update), e.g. back onto a
revived book. `imported_activity` (the dumps' dated events, for trending) is replaced by the line's, or
removed when the line's is empty; a line without one leaves it.

Ratings: no item -> put conditioned on none; a stored rating older than the line (`updated_at`) -> put
conditioned on `updated_at` as read; otherwise the line is skipped: a reader's newer rating stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bookrec_catalog.catalog import SHELVES, STARS
from bookrec_catalog.changes import change_stamp
from bookrec_catalog.dynamo import from_item, to_attribute, to_item
from bookrec_catalog.imported_activity import IMPORTED_ACTIVITY
from bookrec_etl import aggregates, shelf_counts
from bookrec_etl.aggregates import DISTRIBUTION, IMPORTED, Distribution
from bookrec_etl.shelf_counts import IMPORTED_SHELF_COUNTS, SHELF_COUNTS

FEED_ATTRIBUTES = frozenset({"changed_at", "change_shard", "deleted_at", "expires_at"})
# What readers wrote onto a book beside its rating aggregate: the ratings service's alone, never a load's.
READER_ATTRIBUTES = frozenset({SHELF_COUNTS})
# Never part of the catalogue comparison (so never SET nor REMOVEd by a load): the aggregate, the readers'
# shelf counts, the feed's stamps, the key, and the record's own timestamps (a line without them gets the
# file's time, which differs from file to file).
NOT_CATALOGUE = aggregates.AGGREGATE_ATTRIBUTES | READER_ATTRIBUTES | FEED_ATTRIBUTES | {
    "book_id", "created_at", "updated_at", IMPORTED_SHELF_COUNTS, IMPORTED_ACTIVITY}
LIVE = "attribute_exists(book_id) AND attribute_not_exists(deleted_at)"


@dataclass(frozen=True)
class Plan:
    """One line's write. `action` is a TransactWriteItems action, None when nothing is written."""

    outcome: str  # new | revived | updated | unchanged | rating | not newer
    action: dict[str, Any] | None = None
    reconcile: bool = False  # count the book's rows into its aggregate once this is written
    adopt: Distribution | None = None  # ... holding this imported part from then on


@dataclass
class Expression:
    """Names and values of one DynamoDB expression, each under a placeholder of its own."""

    names: dict[str, str]
    values: dict[str, Any]

    def name(self, attribute: str) -> str:
        placeholder = f"#a{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, python_value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = to_attribute(python_value)
        return placeholder

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"ExpressionAttributeNames": self.names}
        if self.values:
            params["ExpressionAttributeValues"] = self.values
        return params


def stars_as_read(expression: Expression, attribute: str, raw: Any, keys: tuple[str, ...] = STARS) -> list[str]:
    """Conditions that hold while the counts map `attribute` (per star, or per shelf with `keys`) is exactly
    as read, key by key (an absent map or key stays absent), as the ratings service conditions its writes."""
    map_name = expression.name(attribute)
    if not isinstance(raw, Mapping):
        return [f"attribute_not_exists({map_name})"] if raw is None else \
            [f"{map_name} = {expression.value(raw)}"]
    conditions = []
    for key in keys:
        path = f"{map_name}.{expression.name(key)}"
        conditions.append(f"{path} = {expression.value(raw[key])}" if key in raw
                          else f"attribute_not_exists({path})")
    return conditions


def aggregate_update(table: str, book_id: str, record: Mapping[str, Any], target: Distribution,
                     imported: Distribution, now: str, *, also_set: Mapping[str, Any] | None = None,
                     remove: tuple[str, ...] = (), also_read: tuple[str, ...] = ()) -> dict[str, Any]:
    """An Update setting the aggregate to `target` (imported part `imported`) and stamping the feed,
    conditioned on a live book whose distribution and imported part (and the shelf maps `also_read`) are as
    read in `record`."""
    expression = Expression({}, {})
    assignments = {**(also_set or {}), **aggregates.aggregate(target), IMPORTED: imported,
                   **change_stamp(book_id, now)}
    conditions = [LIVE, *stars_as_read(expression, DISTRIBUTION, record.get(DISTRIBUTION)),
                  *stars_as_read(expression, IMPORTED, record.get(IMPORTED)),
                  *_shelf_maps_as_read(expression, record, also_read)]
    return _update(table, book_id, expression, assignments, remove, conditions)


@dataclass(frozen=True)
class ImportedParts:
    """What a line changes of a live book's imported shelf counts and imported activity."""

    sets: dict[str, Any]
    remove: tuple[str, ...] = ()
    read: tuple[str, ...] = ()  # shelf maps the write is conditioned on, as read
    reconcile: bool = False  # a shelf held at zero: count the entries once written


def imported_parts(stored: Mapping[str, Any], line: Mapping[str, Any]) -> ImportedParts:
    """The shelf counts moved by the difference of the line's imported part (when it gives one and it
    changed), and its imported activity set, or removed when it is empty (when it gives one)."""
    sets: dict[str, Any] = {}
    remove: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    reconcile = False
    if IMPORTED_SHELF_COUNTS in line:
        imported = shelf_counts.counts(line[IMPORTED_SHELF_COUNTS])
        moved = shelf_counts.new_imported(stored, imported)
        if moved is not None:
            counts, reconcile = moved
            sets = {SHELF_COUNTS: counts, IMPORTED_SHELF_COUNTS: imported}
            read = (SHELF_COUNTS, IMPORTED_SHELF_COUNTS)
    activity = line.get(IMPORTED_ACTIVITY)
    if activity and stored.get(IMPORTED_ACTIVITY) != activity:
        sets[IMPORTED_ACTIVITY] = dict(activity)
    elif activity is not None and not activity and IMPORTED_ACTIVITY in stored:
        remove = (IMPORTED_ACTIVITY,)
    return ImportedParts(sets, remove, read, reconcile)


def _shelf_maps_as_read(expression: Expression, record: Mapping[str, Any], names: tuple[str, ...]) -> list[str]:
    return [condition for name in names for condition in stars_as_read(expression, name, record.get(name), SHELVES)]


def repair_update(table: str, book_id: str, record: Mapping[str, Any], now: str, *,
                  aggregate: tuple[Distribution, Distribution] | None = None,
                  shelves: tuple[Mapping[str, int], Mapping[str, int] | None] | None = None) -> dict[str, Any]:
    """reconcile's repair of a book: an Update setting the aggregate to `aggregate` (target, imported part)
    and/or `shelf_counts` to `shelves` (target, and the imported part to record when the stored one is
    malformed), stamping the feed, conditioned on a live book whose parts it writes, and the imported parts
    they follow from, are key by key as read in `record` (a reader's rating or shelving, or a load's new
    imported part, meanwhile fails it: read again)."""
    expression = Expression({}, {})
    assignments: dict[str, Any] = {}
    conditions = [LIVE]
    if aggregate is not None:
        target, imported = aggregate
        assignments.update({**aggregates.aggregate(target), IMPORTED: imported})
        conditions += [*stars_as_read(expression, DISTRIBUTION, record.get(DISTRIBUTION)),
                       *stars_as_read(expression, IMPORTED, record.get(IMPORTED))]
    if shelves is not None:
        counts, imported_shelves = shelves
        assignments[SHELF_COUNTS] = dict(counts)
        if imported_shelves is not None:
            assignments[IMPORTED_SHELF_COUNTS] = dict(imported_shelves)
        conditions += [*stars_as_read(expression, SHELF_COUNTS, record.get(SHELF_COUNTS), SHELVES),
                       *stars_as_read(expression, IMPORTED_SHELF_COUNTS, record.get(IMPORTED_SHELF_COUNTS),
                                      SHELVES)]
    return _update(table, book_id, expression, {**assignments, **change_stamp(book_id, now)}, (), conditions)


def counts_update(table: str, book_id: str, record: Mapping[str, Any], now: str, *,
                  distribution: Distribution | None = None, shelves: Mapping[str, int] | None = None,
                  ) -> dict[str, Any]:
    """A redirect's move of readers' items (moves.py): an Update setting the aggregate that follows from
    `distribution` (the imported part untouched) and/or `shelf_counts` to `shelves`, stamping the feed,
    conditioned like the ratings service's writes on a live book whose maps it writes are as read."""
    expression = Expression({}, {})
    assignments: dict[str, Any] = {}
    conditions = [LIVE]
    if distribution is not None:
        assignments.update(aggregates.aggregate(distribution))
        conditions += stars_as_read(expression, DISTRIBUTION, record.get(DISTRIBUTION))
    if shelves is not None:
        assignments[SHELF_COUNTS] = dict(shelves)
        conditions += stars_as_read(expression, SHELF_COUNTS, record.get(SHELF_COUNTS), SHELVES)
    return _update(table, book_id, expression, {**assignments, **change_stamp(book_id, now)}, (), conditions)


def _update(table: str, book_id: str, expression: Expression, assignments: Mapping[str, Any],
            remove: tuple[str, ...], conditions: list[str]) -> dict[str, Any]:
    update = "SET " + ", ".join(f"{expression.name(k)} = {expression.value(v)}"
                                for k, v in assignments.items())
    if remove:
        update += " REMOVE " + ", ".join(expression.name(k) for k in remove)
    return {"Update": {"TableName": table, "Key": {"book_id": {"S": book_id}}, "UpdateExpression": update,
                       "ConditionExpression": " AND ".join(conditions), **expression.params()}}


def line_imported(record: Mapping[str, Any]) -> Distribution | None:
    """The imported part a line gives; None when its source says nothing about ratings."""
    return aggregates.distribution(record[IMPORTED]) if IMPORTED in record else None


def plan_book(table: str, record: dict[str, Any], stored_item: dict[str, Any] | None, now: str) -> Plan:
    """The write of a book line `record` (derived attributes set) over `stored_item` (as read, or None)."""
    book_id = record["book_id"]
    imported = line_imported(record)
    record = {k: v for k, v in record.items() if k not in READER_ATTRIBUTES}
    whole = to_item({**record, IMPORTED: imported or aggregates.zero(), **new_book_shelves(record),
                     **change_stamp(book_id, now)})
    if stored_item is None:
        return Plan("new", {"Put": {"TableName": table, "Item": whole,
                                    "ConditionExpression": "attribute_not_exists(book_id)"}})
    stored = from_item(stored_item)
    if "deleted_at" in stored:
        return Plan("revived", {"Put": {
            "TableName": table, "Item": whole, "ConditionExpression": "#d = :d",
            "ExpressionAttributeNames": {"#d": "deleted_at"},
            "ExpressionAttributeValues": {":d": stored_item["deleted_at"]}}}, reconcile=True)
    line = from_item(to_item(record))  # as DynamoDB will hold it (no None, no empty strings)
    changed = {k: v for k, v in line.items() if k not in NOT_CATALOGUE and stored.get(k) != v}
    gone = tuple(sorted(k for k in stored if k not in NOT_CATALOGUE and k not in line))
    catalogue = {**changed, "updated_at": line["updated_at"]} if changed or gone else {}
    parts = imported_parts(stored, record)
    moved = None if imported is None else aggregates.new_imported(stored, imported)
    if imported is not None and moved is not None:
        target, held_at_zero = moved
        return Plan("updated", aggregate_update(table, book_id, stored, target, imported, now,
                                                also_set={**catalogue, **parts.sets}, remove=gone + parts.remove,
                                                also_read=parts.read), reconcile=held_at_zero or parts.reconcile)
    legacy = IMPORTED not in stored and imported is not None
    if not catalogue and not parts.sets and not parts.remove:
        return Plan("unchanged", reconcile=legacy, adopt=imported if legacy else None)
    expression = Expression({}, {})
    action = _update(table, book_id, expression, {**catalogue, **parts.sets, **change_stamp(book_id, now)},
                     gone + parts.remove, [LIVE, *_shelf_maps_as_read(expression, stored, parts.read)])
    return Plan("updated", action, reconcile=legacy or parts.reconcile, adopt=imported if legacy else None)


def new_book_shelves(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a new or revived book's Put holds of the line's imported shelves and activity: its imported part
    as its counts (readers' entries are counted in by reconcile), and its activity, each unless it is empty
    (absent is zero: most works are on no dump's shelf, and their items stay as small as before)."""
    parts: dict[str, Any] = {IMPORTED_ACTIVITY: record.get(IMPORTED_ACTIVITY) or None, IMPORTED_SHELF_COUNTS: None}
    imported = shelf_counts.counts(record.get(IMPORTED_SHELF_COUNTS) or {})
    if any(imported.values()):
        parts.update({SHELF_COUNTS: imported, IMPORTED_SHELF_COUNTS: imported})
    return parts


def plan_rating(table: str, record: dict[str, Any], stored_item: dict[str, Any] | None) -> Plan:
    """The write of a rating line over the stored rating (as read: its `updated_at`, or None)."""
    item = to_item(record)
    if stored_item is None:
        return Plan("rating", {"Put": {"TableName": table, "Item": item,
                                       "ConditionExpression": "attribute_not_exists(user_id)"}})
    was = stored_item.get("updated_at")
    if was is not None and was.get("S", "") >= record["updated_at"]:
        return Plan("not newer")
    condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(#u)"} if was is None else \
        {"ConditionExpression": "#u = :u", "ExpressionAttributeValues": {":u": was}}
    return Plan("rating", {"Put": {"TableName": table, "Item": item,
                                   "ExpressionAttributeNames": {"#u": "updated_at"}, **condition}})


def book_guard(table: str, book_id: str, stored_book: dict[str, Any] | None) -> dict[str, Any]:
    """A ConditionCheck that holds while the book is as read: absent, or with the same change stamp.

    Every write of a book stamps `changed_at`, and every rating a reader writes through the ratings
    service writes its book in the same transaction: while the stamp holds, no reader wrote any rating of
    the book. So the book's rating rows in the same transaction need no condition of their own (one
    condition for several rows: the emulator evaluates each condition at some cost).
    """
    key = {"book_id": {"S": book_id}}
    if stored_book is None:
        return {"ConditionCheck": {"TableName": table, "Key": key,
                                   "ConditionExpression": "attribute_not_exists(book_id)"}}
    stamp = stored_book.get("changed_at")
    condition: dict[str, Any] = \
        {"ConditionExpression": "attribute_exists(book_id) AND attribute_not_exists(#c)"} if stamp is None \
        else {"ConditionExpression": "#c = :c", "ExpressionAttributeValues": {":c": stamp}}
    return {"ConditionCheck": {"TableName": table, "Key": key,
                               "ExpressionAttributeNames": {"#c": "changed_at"}, **condition}}


def unconditional(action: dict[str, Any]) -> dict[str, Any]:
    """A rating's Put without its own condition (its book's guard stands for it)."""
    put = {k: v for k, v in action["Put"].items()
           if k not in ("ConditionExpression", "ExpressionAttributeNames", "ExpressionAttributeValues")}
    return {"Put": put}
