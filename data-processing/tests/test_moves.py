"""A redirect's move step as planned from what was read (moves.py, pure): the both-rated rule and the counts."""

from __future__ import annotations

from bookrec_etl.moves import Tables, plan_step

TABLES = Tables("books", "ratings", "shelves")
NOW = "2026-01-01T00:00:00.000000Z"


def book(book_id: str, **stars: int) -> dict:
    distribution = {star: stars.get(f"s{star}", 0) for star in "12345"}
    return {"book_id": book_id, "ratings_distribution": distribution, "changed_at": "2025-01-01T00:00:00Z",
            "shelf_counts": {"want_to_read": 0, "currently_reading": 0, "read": 1}}


def row(book_id: str, user: str, stars: int, updated_at: str) -> dict:
    return {"book_id": book_id, "user_id": user, "rating": stars, "created_at": updated_at, "updated_at": updated_at}


def counts(action: dict) -> dict:
    values = action["Update"]["ExpressionAttributeValues"]
    names = action["Update"]["ExpressionAttributeNames"]
    update = action["Update"]["UpdateExpression"]
    assigned = dict(part.split(" = ") for part in update[len("SET "):].split(", "))
    return {names[name]: values[value] for name, value in assigned.items() if name in names}


def test_a_tie_keeps_the_targets_rating_and_a_newer_source_rating_replaces_it():
    source, target = book("OL2W", s1=1, s4=1), book("OL1W", s5=1, s3=1)
    rows = [row("OL2W", "tie", 1, "2024-01-01T00:00:00Z"), row("OL2W", "newer", 4, "2024-03-01T00:00:00Z")]
    there = {"tie": row("OL1W", "tie", 5, "2024-01-01T00:00:00Z"),
             "newer": row("OL1W", "newer", 3, "2024-02-01T00:00:00Z")}
    step = plan_step(TABLES, source, target, rows, there, [], {}, NOW)
    assert (step.ratings_moved, step.ratings_dropped) == (0, 2)
    deletes = [a["Delete"]["Key"]["user_id"]["S"] for a in step.actions if "Delete" in a]
    puts = [a["Put"] for a in step.actions if "Put" in a]
    assert deletes == ["tie", "newer"] and [p["Item"]["user_id"]["S"] for p in puts] == ["newer"]
    # The replacing put is conditioned on the target's rating as read, not on its absence.
    assert puts[0]["ExpressionAttributeValues"][":c0"] == {"N": "3"}
    source_counts, target_counts = (counts(a) for a in step.actions if "Update" in a)
    assert source_counts["ratings_distribution"]["M"]["1"] == {"N": "0"}
    assert target_counts["ratings_distribution"]["M"] == {
        "1": {"N": "0"}, "2": {"N": "0"}, "3": {"N": "0"}, "4": {"N": "1"}, "5": {"N": "1"}}


def test_a_step_writes_only_the_counts_it_moves():
    source, target = book("OL2W"), book("OL1W")
    entry = {"book_id": "OL2W", "user_id": "u", "shelf": "read", "user_shelf": "u#read", "shelved_at": NOW}
    step = plan_step(TABLES, source, target, [], {}, [entry], {}, NOW)
    updates = [counts(a) for a in step.actions if "Update" in a]
    stamped = {"shelf_counts", "changed_at", "change_shard"}  # the aggregates untouched, the feed stamped
    assert [set(u) for u in updates] == [stamped, stamped]
    assert updates[1]["shelf_counts"]["M"]["read"] == {"N": "2"} and step.entries_moved == 1
