"""The aggregate's arithmetic and the write each line plans: pure functions, no I/O."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookrec_catalog.catalog import with_derived_attributes
from bookrec_catalog.dynamo import to_item
from bookrec_etl import aggregates
from bookrec_etl.plans import Plan, plan_book, plan_rating
from bookrec_etl.records import Rejected, book

NOW = "2026-12-01T00:00:00.000000Z"
counts = st.fixed_dictionaries({star: st.integers(0, 1000) for star in "12345"})


def stored(distribution: dict, imported: dict | None = None, **catalogue) -> dict:
    record = with_derived_attributes({"book_id": "OL1W", "title": "One", **catalogue,
                                      "ratings_distribution": distribution})
    return {**record, **({"imported_distribution": imported} if imported is not None else {}),
            "changed_at": "2020-01-01T00:00:00.000000Z", "change_shard": "3"}


@given(rows=counts, old=counts, new=counts)
def test_moving_the_imported_part_keeps_the_rows_part(rows, old, new):
    record = stored(aggregates.plus(old, rows), old)
    moved, held_at_zero = aggregates.new_imported(record, new) or (record["ratings_distribution"], False)
    assert not held_at_zero and aggregates.minus(moved, new) == rows
    after = {**record, **aggregates.aggregate(moved), "imported_distribution": new}
    assert aggregates.drift_of("OL1W", after, rows) is None


def test_a_move_below_zero_is_held_at_zero_and_flagged():
    record = stored({"4": 2}, {"4": 5})  # the aggregate had lost ratings it should hold
    assert aggregates.new_imported(record, aggregates.zero()) == (aggregates.zero(), True)


@pytest.mark.parametrize("distribution, imported, rows, drifts", [
    ({"5": 1}, {}, {"5": 1}, False),
    ({}, {}, {"5": 1}, True),  # a rating missing from the aggregate
    ({"4": 10, "5": 1}, {"4": 10}, {"5": 1}, False),
    ({"4": 10, "5": 1}, None, {"5": 1}, False),  # legacy: the ten may be the source's
    ({"5": 1}, None, {"5": 2}, True),  # legacy, fewer stars than rows
])
def test_drift_of(distribution, imported, rows, drifts):
    record = stored(distribution, None if imported is None else aggregates.distribution(imported))
    found = aggregates.drift_of("OL1W", record, aggregates.distribution(rows))
    assert (found is not None) == drifts


def test_sum_count_or_average_that_do_not_follow_drift_whatever_the_rows():
    record = {**stored({"5": 1}, aggregates.zero()), "rating_count": 7}
    found = aggregates.drift_of("OL1W", record, aggregates.distribution({"5": 1}))
    assert found is not None and found.count_off == 6 and found.target == aggregates.distribution({"5": 1})


def action_of(plan: Plan) -> dict[str, Any]:
    assert plan.action is not None, plan.outcome
    return plan.action


def line(**fields) -> dict:
    return book({"book_id": "OL1W", "title": "One", "created_at": NOW, **fields})


def test_a_book_line_plans_what_it_changes_and_never_the_aggregate():
    rated = to_item(stored({"5": 3}, aggregates.zero(), subtitle="Old", cover_id=1))
    assert plan_book("b", line(subtitle="Old", cover_id=1), rated, NOW).outcome == "unchanged"
    plan = plan_book("b", line(cover_id=2, ratings_distribution={"1": 9}), rated, NOW)
    update = action_of(plan)["Update"]
    names = update["ExpressionAttributeNames"]
    sets, removes = update["UpdateExpression"].removeprefix("SET ").split(" REMOVE ")
    assigned = {names[part.split(" = ")[0].strip()] for part in sets.split(",")}
    assert plan.outcome == "updated" and assigned == {"cover_id", "updated_at", "changed_at", "change_shard"}
    assert [names[n] for n in removes.split(", ")] == ["subtitle"]
    assert update["ConditionExpression"] == "attribute_exists(book_id) AND attribute_not_exists(deleted_at)"


def test_new_revived_and_legacy_books():
    new = plan_book("b", line(imported_distribution={"4": 2}), None, NOW)
    assert new.outcome == "new"
    assert action_of(new)["Put"]["ConditionExpression"] == "attribute_not_exists(book_id)"
    assert action_of(new)["Put"]["Item"]["ratings_distribution"]["M"]["4"] == {"N": "2"}
    revived = plan_book("b", line(), to_item({"book_id": "OL1W", "deleted_at": NOW}), NOW)
    assert revived.outcome == "revived" and revived.reconcile
    legacy = plan_book("b", line(imported_distribution={"4": 2}), to_item(stored({"4": 9})), NOW)
    assert legacy.outcome == "unchanged" and legacy.reconcile
    assert legacy.adopt == aggregates.distribution({"4": 2})


def test_rating_lines_are_written_only_over_older_ratings():
    record = {"book_id": "OL1W", "user_id": "u", "rating": 3, "created_at": NOW, "updated_at": NOW}
    new = plan_rating("r", record, None)
    assert action_of(new)["Put"]["ConditionExpression"] == "attribute_not_exists(user_id)"
    was = {"S": "2020-01-01T00:00:00.000000Z"}
    older = plan_rating("r", record, {"updated_at": was})
    assert action_of(older)["Put"]["ExpressionAttributeValues"] == {":u": was}
    assert plan_rating("r", record, {"updated_at": {"S": NOW}}).outcome == "not newer"


@pytest.mark.parametrize("fields, reason", [
    ({"imported_distribution": {"6": 1}}, "malformed rating distribution"),
    ({"imported_distribution": {"4": -1}}, "malformed rating distribution"),
    ({"imported_distribution": {"4": 2}, "ratings_distribution": {"4": 1}}, "holds more ratings"),
])
def test_a_line_with_an_impossible_imported_part_is_rejected(fields, reason):
    with pytest.raises(Rejected, match=reason):
        line(**fields)
