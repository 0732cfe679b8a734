"""The store's optimistic concurrency against a moto server over HTTP: replicas racing on one book.

On the serialised moto server (see conftest): only the transaction conditions keep separate replicas exact.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import pytest
from prometheus_client import REGISTRY

from bookrec_catalog.catalog import utc_now, with_derived_attributes
from bookrec_catalog.changes import change_shard, tombstone
from bookrec_catalog.dynamo import from_item, to_item
from bookrec_common.clients import dynamodb_client
from bookrec_common.errors import DependencyUnavailable, NotFound
from bookrec_common.settings import ServiceSettings
from bookrec_local import definitions
from bookrec_ratings.store import RatingStore

BOOK = "OL7W"


@pytest.fixture
def race(serialised_moto, monkeypatch):
    """Fresh tables holding one unrated book; yields (sync client, table names, settings)."""
    endpoint, dynamodb = serialised_moto
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    prefix = f"r{uuid.uuid4().hex[:8]}"
    tables = definitions.create_tables(dynamodb, prefix)
    unrated = with_derived_attributes({"book_id": BOOK, "title": "T"})
    dynamodb.put_item(TableName=tables["books"], Item=to_item(unrated))
    yield dynamodb, tables, ServiceSettings()  # only the DynamoDB client's settings are needed
    definitions.delete_tables(dynamodb, prefix)


@pytest.fixture
def writes():
    """() -> what the stores' exported metrics counted since the test began: committed changes, attempts
    they took in all, lost races, changes refused after the last attempt. (Global metrics: these tests run
    one at a time in the process.)"""
    names = {"committed": "rating_write_attempts_count", "attempts": "rating_write_attempts_sum",
             "conflicts": "rating_write_conflicts_total", "gave_up": "rating_write_gave_up_total"}

    def read() -> dict[str, float]:
        return {key: REGISTRY.get_sample_value(name) or 0.0 for key, name in names.items()}

    start = read()
    return lambda: {key: value - start[key] for key, value in read().items()}


def replica(client, tables, max_attempts: int) -> RatingStore:
    return RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"],
                       max_attempts=max_attempts)


def stored_ratings(dynamodb, tables) -> dict[str, int]:
    items = dynamodb.scan(TableName=tables["ratings"], ConsistentRead=True)["Items"]
    return {i["user_id"]["S"]: int(i["rating"]["N"]) for i in items}


def book(dynamodb, tables, book_id=BOOK) -> dict:
    return from_item(dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": book_id}},
                                       ConsistentRead=True)["Item"])


def assert_aggregate_is(record: dict, truth: dict[str, int]) -> None:
    assert record["rating_count"] == len(truth)
    assert record["rating_sum"] == sum(truth.values())
    assert record["ratings_distribution"] == {str(s): list(truth.values()).count(s) for s in range(1, 6)}
    assert record["avg_rating"] == (round(sum(truth.values()) / len(truth), 4) if truth else 0.0)


async def test_replicas_racing_on_one_book_keep_exact_aggregates(race, writes):
    """New raters at once, then re-ratings, deletions and more new raters at once, over 4 replicas.

    Sized for the test run; the 200-rater run goes through HTTP in test_api, and the
    benchmark races more replicas for longer.
    """
    dynamodb, tables, settings = race
    rng = random.Random(3)
    first = {f"user{i}": rng.randint(1, 5) for i in range(60)}
    rerated = {u: rng.randint(1, 5) for u in rng.sample(sorted(first), 15)}
    removed = rng.sample(sorted(set(first) - set(rerated)), 10)
    late = {f"late{i}": rng.randint(1, 5) for i in range(15)}
    async with dynamodb_client(settings) as client:
        # Separate stores share no lock: only the transaction conditions keep them honest.
        replicas = [replica(client, tables, max_attempts=400) for _ in range(4)]

        def on(i: int) -> RatingStore:
            return replicas[i % len(replicas)]

        await asyncio.gather(*(on(i).change(BOOK, u, r, utc_now()) for i, (u, r) in enumerate(first.items())))
        second = [*[(u, r) for u, r in rerated.items()], *[(u, None) for u in removed], *late.items()]
        rng.shuffle(second)
        changes = await asyncio.gather(*(on(i).change(BOOK, u, r, utc_now())
                                         for i, (u, r) in enumerate(second)))
    truth = {**{u: r for u, r in first.items() if u not in removed}, **rerated, **late}
    assert stored_ratings(dynamodb, tables) == truth
    assert_aggregate_is(book(dynamodb, tables), truth)
    kinds = [c.kind.value for c in changes]
    assert (kinds.count("rerating"), kinds.count("deletion"), kinds.count("new")) == (15, 10, 15)
    counted = writes()
    assert counted["conflicts"] > 0  # the race really happened and was retried
    assert counted["committed"] == len(first) + len(second)
    assert counted["attempts"] == counted["committed"] + counted["conflicts"]  # no change gave up


async def test_one_user_re_rating_from_every_replica_at_once_leaves_one_consistent_rating(race):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        replicas = [replica(client, tables, max_attempts=400) for _ in range(4)]
        await asyncio.gather(*(replicas[i % 4].change(BOOK, f"same{i % 3}", 1 + i % 5, utc_now())
                               for i in range(24)))
    truth = stored_ratings(dynamodb, tables)  # whichever write committed last, per user
    assert set(truth) == {"same0", "same1", "same2"}
    assert_aggregate_is(book(dynamodb, tables), truth)


async def test_when_retries_run_out_the_change_is_refused_whole(race, writes):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        replicas = [replica(client, tables, max_attempts=1) for _ in range(4)]
        outcomes = await asyncio.gather(*(replicas[i % 4].change(BOOK, f"u{i}", 1 + i % 5, utc_now())
                                          for i in range(40)), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert refused and all(isinstance(o, DependencyUnavailable) and o.status == 503 for o in refused)
    truth = stored_ratings(dynamodb, tables)
    counted = writes()
    assert len(truth) == 40 - len(refused) == counted["committed"] == counted["attempts"]  # 1 attempt each
    assert counted["gave_up"] == len(refused) == counted["conflicts"]  # each refusal lost its one race
    assert_aggregate_is(book(dynamodb, tables), truth)


class InterruptedStore(RatingStore):
    """Lets `interrupt` change the tables between this store's first read and its write."""

    def __init__(self, *args, interrupt, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._interrupt = interrupt

    async def _read(self, *args):
        snapshot = await super()._read(*args)
        if self._interrupt is not None:
            interrupt, self._interrupt = self._interrupt, None
            await asyncio.to_thread(interrupt)
        return snapshot


async def test_an_aggregate_changed_between_read_and_write_is_re_read_not_overwritten(race, writes):
    dynamodb, tables, settings = race

    def another_writer_adds_two_fives():
        dynamodb.update_item(TableName=tables["books"], Key={"book_id": {"S": BOOK}},
                             UpdateExpression="SET ratings_distribution.#five = :two",
                             ExpressionAttributeNames={"#five": "5"},
                             ExpressionAttributeValues={":two": {"N": "2"}})

    async with dynamodb_client(settings) as client:
        store = InterruptedStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"],
                                 interrupt=another_writer_adds_two_fives)
        change = await store.change(BOOK, "alice", 3, utc_now())
    assert writes() == {"committed": 1, "attempts": 2, "conflicts": 1, "gave_up": 0}  # committed at its 2nd try
    assert change.aggregate.distribution == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 2}
    assert book(dynamodb, tables)["ratings_distribution"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 2}
    assert book(dynamodb, tables)["rating_sum"] == 13


async def test_a_rating_changed_between_read_and_write_is_re_read_and_moved_by_the_right_difference(race,
                                                                                                   writes):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        other = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
        await other.change(BOOK, "alice", 1, utc_now())
        loop = asyncio.get_running_loop()

        def alice_re_rates_elsewhere():
            asyncio.run_coroutine_threadsafe(other.change(BOOK, "alice", 5, utc_now()), loop).result(10)

        store = InterruptedStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"],
                                 interrupt=alice_re_rates_elsewhere)
        change = await store.change(BOOK, "alice", 2, utc_now())
    assert writes()["conflicts"] == 1 and change.previous["rating"] == 5
    assert_aggregate_is(book(dynamodb, tables), {"alice": 2})


async def test_books_without_or_with_partial_aggregates_get_complete_ones(race, writes):
    dynamodb, tables, settings = race
    dynamodb.put_item(TableName=tables["books"], Item=to_item({"book_id": "OL8W", "title": "bare"}))
    dynamodb.put_item(TableName=tables["books"], Item=to_item({"book_id": "OL9W", "title": "partial",
                                                               "ratings_distribution": {"5": 2}}))
    async with dynamodb_client(settings) as client:
        store = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
        await store.change("OL8W", "alice", 4, utc_now())
        await store.change("OL9W", "alice", 4, utc_now())
    assert book(dynamodb, tables, "OL8W")["ratings_distribution"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}
    partial = book(dynamodb, tables, "OL9W")
    assert (partial["rating_count"], partial["rating_sum"], partial["avg_rating"]) == (3, 14, 4.6667)
    assert writes() == {"committed": 2, "attempts": 2, "conflicts": 0, "gave_up": 0}


async def test_deleting_a_rating_the_aggregate_never_counted_still_deletes_it(race):
    dynamodb, tables, settings = race
    # A rating item written behind the service's back (e.g. a bulk import that skipped aggregates).
    stamp = utc_now()
    ghost = {"book_id": BOOK, "user_id": "ghost", "rating": 4, "created_at": stamp, "updated_at": stamp}
    dynamodb.put_item(TableName=tables["ratings"], Item=to_item(ghost))
    async with dynamodb_client(settings) as client:
        store = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
        change = await store.change(BOOK, "ghost", None, utc_now())
    assert change.previous["rating"] == 4 and stored_ratings(dynamodb, tables) == {}
    assert_aggregate_is(book(dynamodb, tables), {})


async def test_unknown_book_and_absent_rating_are_not_found_and_write_nothing(race):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        store = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
        with pytest.raises(NotFound) as unknown:
            await store.change("OL999W", "alice", 3, utc_now())
        with pytest.raises(NotFound) as absent:
            await store.change(BOOK, "alice", None, utc_now())
    assert (unknown.value.code, absent.value.code) == ("book_not_found", "rating_not_found")
    assert stored_ratings(dynamodb, tables) == {} and book(dynamodb, tables)["rating_count"] == 0
    assert dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": "OL999W"}}).get("Item") is None


def tombstone_of(book_id: str) -> dict:
    return to_item(tombstone(book_id, utc_now(), time.time()))


async def test_a_change_stamps_the_book_for_the_change_feed_with_its_own_time(race):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        store = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
        now = utc_now()
        await store.change(BOOK, "alice", 4, now)
    stored = book(dynamodb, tables)
    assert stored["changed_at"] == stored["updated_at"] == now
    assert stored["change_shard"] == change_shard(BOOK)


async def test_a_deleted_book_is_not_found_and_its_tombstone_is_left_as_it_is(race):
    dynamodb, tables, settings = race
    dynamodb.put_item(TableName=tables["books"], Item=tombstone_of(BOOK))
    before = book(dynamodb, tables)
    async with dynamodb_client(settings) as client:
        store = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
        with pytest.raises(NotFound) as rated:
            await store.change(BOOK, "alice", 3, utc_now())
        assert await store.book_counts(BOOK) is None
    assert rated.value.code == "book_not_found"
    assert stored_ratings(dynamodb, tables) == {} and book(dynamodb, tables) == before


async def test_a_rating_of_a_deleted_book_can_be_removed_and_the_tombstone_is_left_as_it_is(race, writes):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        store = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
        await store.change(BOOK, "alice", 4, utc_now())
        await store.change(BOOK, "bob", 2, utc_now())
        dynamodb.put_item(TableName=tables["books"], Item=tombstone_of(BOOK))
        before = book(dynamodb, tables)
        removed = await store.change(BOOK, "alice", None, utc_now())
        assert removed.previous["rating"] == 4 and removed.current is None and removed.aggregate is None
        with pytest.raises(NotFound) as rated:
            await store.change(BOOK, "bob", 5, utc_now())
        with pytest.raises(NotFound) as again:
            await store.change(BOOK, "alice", None, utc_now())
    assert rated.value.code == again.value.code == "book_not_found"
    assert stored_ratings(dynamodb, tables) == {"bob": 2} and book(dynamodb, tables) == before
    assert writes()["conflicts"] == 0


async def test_a_rating_of_a_book_whose_tombstone_expired_can_be_removed(race):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        store = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
        await store.change(BOOK, "alice", 4, utc_now())
        dynamodb.delete_item(TableName=tables["books"], Key={"book_id": {"S": BOOK}})  # what TTL does
        await store.change(BOOK, "alice", None, utc_now())
    assert stored_ratings(dynamodb, tables) == {}
    assert dynamodb.get_item(TableName=tables["books"], Key={"book_id": {"S": BOOK}}).get("Item") is None


async def test_a_book_restored_while_a_rating_is_removed_from_its_tombstone_keeps_an_exact_aggregate(race,
                                                                                                  writes):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        store = RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"])
        await store.change(BOOK, "alice", 4, utc_now())
        await store.change(BOOK, "bob", 2, utc_now())
        live = book(dynamodb, tables)
        dynamodb.put_item(TableName=tables["books"], Item=tombstone_of(BOOK))

        def the_book_is_restored():
            dynamodb.put_item(TableName=tables["books"], Item=to_item(live))

        interrupted = InterruptedStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"],
                                       interrupt=the_book_is_restored)
        removed = await interrupted.change(BOOK, "alice", None, utc_now())
    assert writes()["conflicts"] == 1 and removed.aggregate is not None  # refused, re-read: a live book
    assert stored_ratings(dynamodb, tables) == {"bob": 2}
    assert_aggregate_is(book(dynamodb, tables), {"bob": 2})


# A bare book (no aggregate yet) is read as "no distribution", which a tombstone matches too: only the
# condition on deleted_at refuses the write there.
@pytest.mark.parametrize("book_id", [BOOK, "OL8W"], ids=["with-aggregate", "bare"])
async def test_a_book_deleted_between_read_and_write_is_not_found_and_nothing_is_written(race, writes,
                                                                                          book_id):
    dynamodb, tables, settings = race
    dynamodb.put_item(TableName=tables["books"], Item=to_item({"book_id": "OL8W", "title": "bare"}))

    def the_etl_deletes_the_book():
        dynamodb.put_item(TableName=tables["books"], Item=tombstone_of(book_id))

    async with dynamodb_client(settings) as client:
        store = InterruptedStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"],
                                 interrupt=the_etl_deletes_the_book)
        with pytest.raises(NotFound) as rated:
            await store.change(book_id, "alice", 3, utc_now())
    assert rated.value.code == "book_not_found" and writes()["conflicts"] == 1  # refused, re-read: gone
    assert stored_ratings(dynamodb, tables) == {}
    tombstone_left = book(dynamodb, tables, book_id)
    assert set(tombstone_left) == {"book_id", "deleted_at", "changed_at", "change_shard", "expires_at"}


# Shelves: the same protocol, the shelf entry and the book's shelf counts in one transaction.

def stored_shelves(dynamodb, tables) -> dict[tuple[str, str], str]:
    items = dynamodb.scan(TableName=tables["shelves"], ConsistentRead=True)["Items"]
    return {(i["book_id"]["S"], i["user_id"]["S"]): i["shelf"]["S"] for i in items}


def shelf_counts_of(entries: dict[tuple[str, str], str], book_id: str = BOOK) -> dict[str, int]:
    on = [shelf for (book, _), shelf in entries.items() if book == book_id]
    return {shelf: on.count(shelf) for shelf in ("want_to_read", "currently_reading", "read")}


def store_of(client, tables, **options) -> RatingStore:
    return RatingStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"], **options)


async def test_shelving_moving_and_unshelving_keep_the_entry_and_the_counts_together(race, writes):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        store = store_of(client, tables)
        shelved = await store.shelve(BOOK, "ada", "want_to_read", "2026-01-01T00:00:00.000000Z")
        await store.shelve(BOOK, "bob", "want_to_read", utc_now())
        moved = await store.shelve(BOOK, "ada", "currently_reading", "2026-01-02T00:00:00.000000Z")
        before_same = book(dynamodb, tables)
        same = await store.shelve(BOOK, "ada", "currently_reading", "2026-01-03T00:00:00.000000Z")
        assert book(dynamodb, tables) == before_same  # nothing written, not even the change feed's stamp
        removed = await store.shelve(BOOK, "bob", None, utc_now())
    assert [c.shelving.value for c in (shelved, moved, same, removed)] == ["shelved", "moved", "unchanged",
                                                                            "unshelved"]
    assert moved.previous_shelf["shelf"] == "want_to_read" and moved.current_shelf["shelved_at"] == \
        "2026-01-02T00:00:00.000000Z"
    assert same.current_shelf["shelved_at"] == "2026-01-02T00:00:00.000000Z"  # when it was put there
    assert stored_shelves(dynamodb, tables) == {(BOOK, "ada"): "currently_reading"}
    stored = book(dynamodb, tables)
    assert stored["shelf_counts"] == {"want_to_read": 0, "currently_reading": 1, "read": 0}
    assert stored["rating_count"] == 0 and "ratings_distribution" in stored  # the aggregate untouched
    entry = from_item(dynamodb.get_item(TableName=tables["shelves"], ConsistentRead=True,
                                        Key={"book_id": {"S": BOOK}, "user_id": {"S": "ada"}})["Item"])
    assert entry == {"book_id": BOOK, "user_id": "ada", "shelf": "currently_reading",
                     "user_shelf": "ada#currently_reading", "shelved_at": "2026-01-02T00:00:00.000000Z"}
    assert writes()["committed"] == 5  # five changes taken, one of which had nothing to write


async def test_a_rating_puts_an_unshelved_book_on_read_and_leaves_a_shelved_one_where_it_is(race):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        store = store_of(client, tables)
        rated = await store.change(BOOK, "ada", 4, utc_now())
        await store.shelve(BOOK, "bob", "want_to_read", utc_now())
        kept = await store.change(BOOK, "bob", 2, utc_now())
        rerated = await store.change(BOOK, "ada", 5, utc_now())
        await store.change(BOOK, "ada", None, utc_now())  # a removed rating leaves the shelf alone
    assert rated.current_shelf["shelf"] == "read" and rated.shelf_counts.counts["read"] == 1
    assert rated.current_shelf["shelved_at"] == rated.current["updated_at"]
    assert kept.shelving.value == "unchanged" and kept.shelf_counts is None
    assert rerated.shelving.value == "unchanged"
    assert stored_shelves(dynamodb, tables) == {(BOOK, "ada"): "read", (BOOK, "bob"): "want_to_read"}
    stored = book(dynamodb, tables)
    assert stored["shelf_counts"] == {"want_to_read": 1, "currently_reading": 0, "read": 1}
    assert_aggregate_is(stored, {"bob": 2})


async def test_replicas_racing_shelvers_and_raters_keep_shelf_counts_equal_to_the_shelves(race, writes):
    dynamodb, tables, settings = race
    rng = random.Random(23)
    shelves = ("want_to_read", "currently_reading", "read", None)
    async with dynamodb_client(settings) as client:
        replicas = [store_of(client, tables, max_attempts=400) for _ in range(4)]
        await asyncio.gather(*(replicas[i % 4].shelve(BOOK, f"r{i}", shelves[i % 3], utc_now())
                               for i in range(30)))

        async def one(i: int) -> None:
            user = f"r{rng.randrange(40)}"
            if i % 3 == 0:
                await replicas[i % 4].change(BOOK, user, rng.randint(1, 5), utc_now())
                return
            try:
                await replicas[i % 4].shelve(BOOK, user, rng.choice(shelves), utc_now())
            except NotFound as exc:  # unshelving a book that is on no shelf
                assert exc.code == "not_shelved"

        await asyncio.gather(*(one(i) for i in range(90)))
    entries = stored_shelves(dynamodb, tables)
    assert book(dynamodb, tables)["shelf_counts"] == shelf_counts_of(entries)
    assert_aggregate_is(book(dynamodb, tables), stored_ratings(dynamodb, tables))
    assert writes()["conflicts"] > 0  # the race really happened and was retried


async def test_shelf_counts_changed_between_read_and_write_are_re_read_not_overwritten(race, writes):
    dynamodb, tables, settings = race

    def another_writer_counts_two_readers():
        dynamodb.update_item(TableName=tables["books"], Key={"book_id": {"S": BOOK}},
                             UpdateExpression="SET shelf_counts = :c",
                             ExpressionAttributeValues={":c": {"M": {"read": {"N": "2"}}}})

    async with dynamodb_client(settings) as client:
        store = InterruptedStore(client, tables["books"], tables["ratings"], shelves_table=tables["shelves"],
                                 interrupt=another_writer_counts_two_readers)
        change = await store.shelve(BOOK, "ada", "read", utc_now())
    assert writes() == {"committed": 1, "attempts": 2, "conflicts": 1, "gave_up": 0}
    assert change.shelf_counts.counts == {"want_to_read": 0, "currently_reading": 0, "read": 3}
    assert book(dynamodb, tables)["shelf_counts"] == change.shelf_counts.counts


async def test_shelving_an_unknown_or_deleted_book_is_not_found_and_its_readers_may_only_unshelve(race):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        store = store_of(client, tables)
        with pytest.raises(NotFound) as unknown:
            await store.shelve("OL999W", "ada", "read", utc_now())
        with pytest.raises(NotFound) as nothing:
            await store.shelve(BOOK, "ada", None, utc_now())
        await store.shelve(BOOK, "ada", "want_to_read", utc_now())
        dynamodb.put_item(TableName=tables["books"], Item=tombstone_of(BOOK))
        before = book(dynamodb, tables)
        refused = []
        for shelf in ("read", "want_to_read"):  # another shelf, and the one it is on
            with pytest.raises(NotFound) as gone:
                await store.shelve(BOOK, "ada", shelf, utc_now())
            refused.append(gone.value.code)
        with pytest.raises(NotFound) as rated:
            await store.change(BOOK, "ada", 3, utc_now())
        unshelved = await store.shelve(BOOK, "ada", None, utc_now())
    assert (unknown.value.code, nothing.value.code, rated.value.code) == ("book_not_found", "not_shelved",
                                                                          "book_not_found")
    assert refused == ["book_not_found"] * 2
    assert unshelved.shelving.value == "unshelved" and unshelved.shelf_counts is None
    assert stored_shelves(dynamodb, tables) == {} and book(dynamodb, tables) == before


async def test_a_shelving_stamps_the_book_for_the_change_feed_with_its_own_time(race):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        now = utc_now()
        await store_of(client, tables).shelve(BOOK, "ada", "read", now)
    stored = book(dynamodb, tables)
    assert stored["changed_at"] == stored["updated_at"] == now and stored["change_shard"] == change_shard(BOOK)


async def test_a_store_without_shelves_rates_as_before_and_shelves_nothing(race):
    dynamodb, tables, settings = race
    async with dynamodb_client(settings) as client:
        store = RatingStore(client, tables["books"], tables["ratings"])
        change = await store.change(BOOK, "ada", 4, utc_now())
        with pytest.raises(RuntimeError):
            await store.shelve(BOOK, "ada", "read", utc_now())
    assert change.current_shelf is None and stored_shelves(dynamodb, tables) == {}
    assert "shelf_counts" not in book(dynamodb, tables)
