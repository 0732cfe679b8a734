"""Journeys of real users through the ALB routes, every answer validated.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080            # web UI, pick users
    LOADTEST_SCENARIO=normal locust -f loadtest/locustfile.py --headless --host ...

User classes:
  BrowsingUser      search -> open one or two hits -> batch of the page (compare); sometimes advanced search
  RatingUser        rate a book -> own ratings (shows it) -> the book's ratings -> recommendations (exclude it)
  ShelvingUser      trending this week -> open a book -> shelve it -> own shelf (shows it) -> similar books
                    -> recommendations (exclude what is shelved)
  AutocompleteUser  types a real title one character at a time, picks it when suggested
  HeavyUser         no think time, one request per task in the seed-style mix (tags select subsets)
  SmokeUser         every journey in turn (the smoke scenario)
  ReplacedSystemUser the replaced system's read mix at its pace (the replaced scenario)

Everything requested is drawn from the catalogue through the API when the test
starts (loadtest/catalogue.py). A 200 with the wrong shape, inconsistent
aggregates, or no results where the catalogue guarantees some is a failure.

HeavyUser task tags (locust --tags): mix (the seed-style mix: search 3,
details 2, batch 2, rate 1, book ratings 1, user ratings 1, advanced 1,
autocomplete 1), memory (search, advanced, autocomplete, recommendations,
similar books, trending: no DynamoDB once warm), dynamo (details, batch, book
and user ratings), search, reco, write.

Environment: LOADTEST_SCENARIO (a preset of loadtest/scenarios.py; unset = plain
locust -u/-r), LOADTEST_THINK_SCALE (multiplies think times; 0 = none),
LOADTEST_SEED, LOADTEST_RECO_USERS (how many real users' recommendations
are read), LOADTEST_TOKENS (a JSON file of [{"access_token", "sub"}]: the
identities raters sign in as, one per simulated user; `make loadtest` creates
them in the local stack's Cognito).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import time
import urllib.parse
import uuid
from collections.abc import Iterable
from pathlib import Path

import gevent
from gevent.event import Event
from locust import FastHttpUser, between, constant, events, tag, task
from locust.runners import MasterRunner, WorkerRunner

from loadtest import contract, shapes
from loadtest.catalogue import Catalogue, CatalogueUnavailable, discover, typing_prefixes, urllib_fetch
from loadtest.validators import (
    NOT_KNOWN,
    ContractViolation,
    check_advanced,
    check_autocomplete,
    check_batch,
    check_book,
    check_book_ratings,
    check_rate,
    check_recommendations,
    check_search,
    check_shelf,
    check_shelving,
    check_similar,
    check_status,
    check_trending,
    check_user_ratings,
    decode,
)

log = logging.getLogger("loadtest")

THINK = float(os.environ.get("LOADTEST_THINK_SCALE", "1"))
SEED = int(os.environ.get("LOADTEST_SEED", "7"))
RECO_USERS = int(os.environ.get("LOADTEST_RECO_USERS", "100"))
RUN_ID = uuid.uuid4().hex[:8]
MAX_BOOKS_RATED = 20  # then a user re-rates: keeps the ratings table bounded in long runs
SEARCH_LIMIT, AUTOCOMPLETE_LIMIT, RECO_LIMIT, RATINGS_LIMIT = 20, 10, 10, 50
SHELVES = ("want_to_read", "currently_reading", "read")
TRENDING_WINDOWS = ("now", "day", "week", "month")

_user_numbers = itertools.count(1)
_identities: list[dict[str, str]] = []
_catalogue: Catalogue | None = None
_catalogue_error = ""
_catalogue_ready = Event()
DISCOVERY_TIMEOUT = 600


def think(low: float, high: float):
    return constant(0) if THINK == 0 else between(low * THINK, high * THINK)


def pause(low: float, high: float) -> None:
    if THINK:
        gevent.sleep(random.uniform(low, high) * THINK)


@events.init.add_listener
def load_catalogue(environment, **_kwargs) -> None:
    """Draw ids, queries, prefixes and users from the API once per load-generating process, before the test.

    Distributed runs (--processes): each worker discovers on its own and tells
    the master, which holds its start (and its shape's clock) until all have.
    """
    global _catalogue, _catalogue_error
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        reports: list[dict] = []
        runner.register_message("catalogue_ready", lambda msg, **_kw: reports.append(msg.data))
        expected = getattr(environment.parsed_options, "expect_workers", 1) or 1
        deadline = time.monotonic() + DISCOVERY_TIMEOUT
        while len(reports) < expected and time.monotonic() < deadline:
            gevent.sleep(0.2)
        errors = [r["error"] for r in reports if r["error"]]
        if errors or len(reports) < expected:
            _catalogue_error = errors[0] if errors else f"only {len(reports)} of {expected} workers drew a catalogue"
        _catalogue_ready.set()
        return
    host = environment.host or getattr(environment.parsed_options, "host", None)
    tokens = os.environ.get("LOADTEST_TOKENS")
    if tokens:
        _identities.extend(json.loads(Path(tokens).read_text()))
    else:
        log.warning("no LOADTEST_TOKENS: rating writes will be refused (401) and count as failures")
    try:
        if not host:
            raise CatalogueUnavailable("no --host to draw the catalogue from")
        _catalogue = discover(urllib_fetch(host), seed=SEED)
        log.info("catalogue drawn through the API: %s", _catalogue.summary())
    except CatalogueUnavailable as exc:
        _catalogue_error = str(exc)
    _catalogue_ready.set()
    if isinstance(runner, WorkerRunner):
        runner.send_message("catalogue_ready", {"error": _catalogue_error})


@events.test_start.add_listener
def refuse_without_catalogue(environment, **_kwargs) -> None:
    _catalogue_ready.wait(DISCOVERY_TIMEOUT)
    if not _catalogue_error:
        return
    log.error("cannot start: %s", _catalogue_error)
    environment.process_exit_code = 3
    gevent.spawn_later(0, environment.runner.quit)


class BookrecUser(FastHttpUser):
    """The requests of the contract, each validated; the journeys below combine them."""

    abstract = True
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        if _catalogue is None:
            raise gevent.GreenletExit  # discovery failed; the runner is quitting
        self.cat = _catalogue
        self.book_ids = self.cat.book_ids
        self.titles = self.cat.typable or list(self.cat.books.items())
        # --processes forks after this module is imported: the pid keeps users of different processes apart.
        number = next(_user_numbers)
        self.rng = random.Random(f"{SEED}-{os.getpid()}-{number}")
        # Each simulated user signs in as its own identity (beyond the pool, identities are shared:
        # then another user's writes can surprise its checks).
        identity = _identities[(number - 1) % len(_identities)] if _identities else None
        self.user_id = identity["sub"] if identity else f"anonymous-{RUN_ID}-{os.getpid()}-{number}"
        self.auth = {"Authorization": f"Bearer {identity['access_token']}"} if identity else {}
        self.rated: dict[str, int] = {}
        self.shelved: dict[str, str] = {}  # book -> shelf, as this run put it

    # -- one validated request each ------------------------------------------------------------

    def _call(self, method: str, path: str, name: str, shape, expected, check, body=None, headers=None):
        with self.client.request(method, path, name=name, json=body, headers=headers,
                                 catch_response=True) as response:
            try:
                check_status(response.status_code, expected, response.content)
                decoded = decode(response.content, shape)
                check(decoded, response.status_code)
            except ContractViolation as exc:
                response.failure(str(exc))
                return None
            response.success()
            return decoded

    def search(self, query: str, offset: int = 0, expect_results: bool = True, via_post: bool | None = None):
        post = self.rng.random() < 0.5 if via_post is None else via_post

        def check(page, _status):
            check_search(page, query=query, limit=SEARCH_LIMIT, offset=offset, expect_results=expect_results)

        if post:
            return self._call("POST", "/search", "/search", contract.SearchPage, (200,), check,
                              {"query": query, "limit": SEARCH_LIMIT, "offset": offset})
        path = f"/search?q={urllib.parse.quote(query)}&limit={SEARCH_LIMIT}&offset={offset}"
        return self._call("GET", path, "/search?q=[query]", contract.SearchPage, (200,), check)

    def advanced(self, criteria: dict, expect_results: bool = True):
        body = {**criteria, "limit": SEARCH_LIMIT, "offset": 0}

        def check(page, _status):
            check_advanced(page, criteria=body, limit=SEARCH_LIMIT, offset=0, expect_results=expect_results)

        return self._call("POST", "/search/advanced", "/search/advanced", contract.SearchPage, (200,), check, body)

    def autocomplete(self, prefix: str, compatible_route: bool = False):
        def check(page, _status):
            check_autocomplete(page, prefix=prefix, limit=AUTOCOMPLETE_LIMIT)

        if compatible_route:
            path = f"/search/shard/{urllib.parse.quote(prefix, safe='')}?limit={AUTOCOMPLETE_LIMIT}"
            return self._call("GET", path, "/search/shard/[prefix]", contract.SearchPage, (200,), check)
        path = f"/search/autocomplete?q={urllib.parse.quote(prefix)}&limit={AUTOCOMPLETE_LIMIT}"
        return self._call("GET", path, "/search/autocomplete?q=[prefix]", contract.SearchPage, (200,), check)

    def book(self, book_id: str):
        return self._call("GET", f"/books/{book_id}", "/books/[id]", contract.Book, (200,),
                          lambda b, _s: check_book(b, book_id=book_id))

    def batch(self, book_ids: list[str]):
        return self._call("POST", "/books/batch", "/books/batch", contract.Batch, (200,),
                          lambda b, _s: check_batch(b, requested=book_ids, known=book_ids),
                          {"book_ids": book_ids})

    def rate(self, book_id: str, rating: int):
        # Only what this run rated is known: an identity may have rated the book in an earlier run.
        previous = self.rated.get(book_id, NOT_KNOWN)

        def check(result, status):
            check_rate(result, status=status, book_id=book_id, user_id=self.user_id, rating=rating,
                       previous=previous)

        result = self._call("POST", f"/books/{book_id}/rate", "/books/[id]/rate", contract.Rate, (200, 201), check,
                            {"user_id": self.user_id, "rating": rating}, headers=self.auth)
        if result is not None:
            self.rated[book_id] = rating
        return result

    def book_ratings(self, book_id: str):
        return self._call("GET", f"/books/{book_id}/ratings?limit={RATINGS_LIMIT}", "/books/[id]/ratings",
                          contract.BookRatings, (200,),
                          lambda r, _s: check_book_ratings(r, book_id=book_id, limit=RATINGS_LIMIT))

    def user_ratings(self, user_id: str, must_contain: dict[str, int] | None = None):
        return self._call("GET", f"/users/{user_id}/ratings?limit={RATINGS_LIMIT}", "/users/[id]/ratings",
                          contract.UserRatings, (200,),
                          lambda r, _s: check_user_ratings(r, user_id=user_id, limit=RATINGS_LIMIT,
                                                           must_contain=must_contain))

    def recommendations(self, user_id: str, already_rated=()):
        return self._call("GET", f"/recommendations/{user_id}?limit={RECO_LIMIT}", "/recommendations/[user]",
                          contract.Recommendations, (200,),
                          lambda r, _s: check_recommendations(r, user_id=user_id, limit=RECO_LIMIT,
                                                              already_rated=already_rated))

    def shelve(self, book_id: str, shelf: str):
        previous = self.shelved.get(book_id, NOT_KNOWN)

        def check(result, status):
            check_shelving(result, status=status, book_id=book_id, user_id=self.user_id, shelf=shelf,
                           previous=previous)

        result = self._call("PUT", f"/books/{book_id}/shelf", "/books/[id]/shelf", contract.Shelving, (200, 201),
                            check, {"shelf": shelf}, headers=self.auth)
        if result is not None:
            self.shelved[book_id] = shelf
        return result

    def shelf(self, shelf: str, must_contain: Iterable[str] = ()):
        return self._call("GET", f"/users/{self.user_id}/shelves/{shelf}?limit={RATINGS_LIMIT}",
                          "/users/[id]/shelves/[shelf]", contract.ReaderShelf, (200,),
                          lambda page, _s: check_shelf(page, user_id=self.user_id, shelf=shelf, limit=RATINGS_LIMIT,
                                                       must_contain=must_contain))

    def similar(self, book_id: str):
        return self._call("GET", f"/books/{book_id}/similar?limit={RECO_LIMIT}", "/books/[id]/similar",
                          contract.SimilarBooks, (200,),
                          lambda r, _s: check_similar(r, book_id=book_id, limit=RECO_LIMIT))

    def trending(self, window: str):
        return self._call("GET", f"/trending?window={window}&limit={RECO_LIMIT}", f"/trending?window={window}",
                          contract.Trending, (200,), lambda r, _s: check_trending(r, window=window, limit=RECO_LIMIT))

    # -- what people do ---------------------------------------------------------------------------

    def random_books(self, low: int, high: int) -> list[str]:
        return self.rng.sample(self.book_ids, min(len(self.book_ids), self.rng.randint(low, high)))

    def pick_to_rate(self) -> str:
        if self.rated and (len(self.rated) >= MAX_BOOKS_RATED or self.rng.random() < 0.2):
            return self.rng.choice(list(self.rated))
        return self.rng.choice(self.book_ids)

    def random_criteria(self) -> dict:
        kind = self.rng.choice([k for k, pool in (("author", self.cat.authors), ("subject", self.cat.subjects),
                                                  ("years", self.cat.years)) if pool])
        if kind == "years":
            year = self.rng.choice(self.cat.years)
            criteria: dict = {"min_year": year - 5, "max_year": year + 5}
        else:
            pool = self.cat.authors if kind == "author" else self.cat.subjects
            criteria = {kind: self.rng.choice(pool)}
        sort = self.rng.choice(["relevance", "rating", "year"])
        return {**criteria, "sort": sort, "order": "desc"}

    def browse(self) -> None:
        """Search, open one or two hits, compare the page's books in one batch; sometimes the next page."""
        page = self.search(self.rng.choice(self.cat.queries))
        if not page or not page.items:
            return
        hits = [item.book_id for item in page.items]
        for book_id in self.rng.sample(hits, min(len(hits), self.rng.randint(1, 2))):
            pause(0.5, 2)
            self.book(book_id)
        pause(0.5, 2)
        self.batch(hits)
        if page.total > SEARCH_LIMIT and self.rng.random() < 0.25:
            pause(1, 3)
            self.search(page.query or "", offset=SEARCH_LIMIT, expect_results=True)

    def browse_advanced(self) -> None:
        page = self.advanced(self.random_criteria())
        if page and page.items:
            pause(0.5, 2)
            self.book(page.items[0].book_id)

    def rate_and_look(self) -> None:
        """Rate, see it among one's ratings, glance at the book's ratings, then get recommendations."""
        book_id, rating = self.pick_to_rate(), self.rng.randint(1, 5)
        if self.rate(book_id, rating) is None:
            return
        pause(0.5, 2)
        self.user_ratings(self.user_id, must_contain=self.rated)
        pause(0.5, 2)
        self.book_ratings(book_id)
        pause(0.5, 2)
        self.recommendations(self.user_id, already_rated=list(self.rated))

    def shelve_and_explore(self) -> None:
        """What is trending this week, open one (or any book), shelve it, see it on the shelf, look at books
        like it, then recommendations that leave out everything rated or shelved."""
        trending = self.trending("week")
        picks = [item.book_id for item in trending.items] if trending else []
        book_id = self.rng.choice(picks) if picks and self.rng.random() < 0.5 else self.rng.choice(self.book_ids)
        pause(0.5, 2)
        self.book(book_id)
        shelf = self.rng.choice(SHELVES)
        if self.shelve(book_id, shelf) is None:
            return
        pause(0.5, 2)
        self.shelf(shelf, must_contain=[b for b, s in self.shelved.items() if s == shelf][-5:])
        pause(0.5, 2)
        self.similar(book_id)
        pause(0.5, 2)
        self.recommendations(self.user_id, already_rated=[*self.rated, *self.shelved])

    def type_a_title(self) -> None:
        """Type a real title one character at a time; pick it once it is suggested."""
        book_id, title = self.rng.choice(self.titles)
        compatible = self.rng.random() < 0.2
        for prefix in typing_prefixes(title):
            page = self.autocomplete(prefix, compatible_route=compatible)
            if page is None:
                return
            if len(prefix) >= 3 and any(item.book_id == book_id for item in page.items):
                pause(0.3, 1)
                self.book(book_id)
                return
            pause(0.08, 0.3)

    def real_user_recommendations(self) -> None:
        users = self.cat.users[:RECO_USERS] or [self.user_id]
        self.recommendations(self.rng.choice(users))


class BrowsingUser(BookrecUser):
    weight = 5
    wait_time = think(2, 6)

    @task(4)
    def search_and_browse(self) -> None:
        self.browse()

    @task(1)
    def advanced_and_open(self) -> None:
        self.browse_advanced()


class RatingUser(BookrecUser):
    weight = 2
    wait_time = think(3, 8)

    @task
    def rate_journey(self) -> None:
        self.rate_and_look()


class ShelvingUser(BookrecUser):
    weight = 2
    wait_time = think(3, 8)

    @task
    def shelf_journey(self) -> None:
        self.shelve_and_explore()


class AutocompleteUser(BookrecUser):
    weight = 3
    wait_time = think(3, 8)

    @task
    def typing(self) -> None:
        self.type_a_title()


class SmokeUser(BookrecUser):
    """One of everything, in turn: the smoke scenario's single user covers every route and journey."""

    weight = 1
    wait_time = think(0.2, 0.5)

    @task
    def everything(self) -> None:
        self.browse()
        self.browse_advanced()
        self.rate_and_look()
        self.shelve_and_explore()
        self.type_a_title()
        self.real_user_recommendations()


class HeavyUser(BookrecUser):
    """No think time: one request per task, weighted like the seed-style mix."""

    weight = 1
    wait_time = constant(float(os.environ.get("LOADTEST_HEAVY_WAIT", "0")))

    @tag("mix", "memory", "search")
    @task(3)
    def search_task(self) -> None:
        self.search(self.rng.choice(self.cat.queries))

    @tag("mix", "dynamo")
    @task(2)
    def details_task(self) -> None:
        self.book(self.rng.choice(self.book_ids))

    @tag("mix", "dynamo")
    @task(2)
    def batch_task(self) -> None:
        self.batch(self.random_books(5, 20))

    @tag("mix", "write")
    @task(1)
    def rate_task(self) -> None:
        self.rate(self.pick_to_rate(), self.rng.randint(1, 5))

    @tag("mix", "dynamo", "ratings")
    @task(1)
    def book_ratings_task(self) -> None:
        self.book_ratings(self.rng.choice(self.cat.popular[:200] or self.book_ids))

    @tag("mix", "dynamo", "ratings")
    @task(1)
    def user_ratings_task(self) -> None:
        if self.cat.users and (not self.rated or self.rng.random() < 0.5):
            self.user_ratings(self.rng.choice(self.cat.users))
        else:
            self.user_ratings(self.user_id, must_contain=self.rated)

    @tag("mix", "memory", "search")
    @task(1)
    def advanced_task(self) -> None:
        self.advanced(self.random_criteria())

    @tag("mix", "memory", "search")
    @task(1)
    def autocomplete_task(self) -> None:
        _, title = self.rng.choice(self.titles)
        prefixes = typing_prefixes(title, max_chars=8)
        self.autocomplete(self.rng.choice(prefixes[1:] or prefixes))

    @tag("memory", "reco")
    @task(2)
    def recommendations_task(self) -> None:
        self.real_user_recommendations()

    @tag("memory", "reco")
    @task(1)
    def similar_task(self) -> None:
        self.similar(self.rng.choice(self.cat.popular[:200] or self.book_ids))

    @tag("memory", "reco")
    @task(1)
    def trending_task(self) -> None:
        self.trending(self.rng.choice(TRENDING_WINDOWS))


class ReplacedSystemUser(BookrecUser):
    """The replaced system's own load pattern: its mix of reads (search, detail, batch, ratings lists,
    advanced search, shard), each user about 1.7 requests/s, so 30 users make ~50 requests/s."""

    weight = 1
    wait_time = think(0.3, 0.9)

    @task(4)
    def search_task(self) -> None:
        self.search(self.rng.choice(self.cat.queries))

    @task(3)
    def details_task(self) -> None:
        self.book(self.rng.choice(self.book_ids))

    @task(2)
    def batch_task(self) -> None:
        self.batch(self.random_books(5, 20))

    @task(1)
    def book_ratings_task(self) -> None:
        self.book_ratings(self.rng.choice(self.cat.popular[:200] or self.book_ids))

    @task(1)
    def user_ratings_task(self) -> None:
        if self.cat.users:
            self.user_ratings(self.rng.choice(self.cat.users))

    @task(1)
    def advanced_task(self) -> None:
        self.advanced(self.random_criteria())

    @task(1)
    def shard_task(self) -> None:
        _book_id, title = self.rng.choice(self.titles)
        prefixes = typing_prefixes(title, max_chars=8)
        self.autocomplete(self.rng.choice(prefixes[1:] or prefixes), compatible_route=True)


_scenario = os.environ.get("LOADTEST_SCENARIO", "")
if _scenario:
    ScenarioShape = shapes.select(_scenario, {cls.__name__: cls for cls in (
        BrowsingUser, RatingUser, ShelvingUser, AutocompleteUser, SmokeUser, HeavyUser, ReplacedSystemUser)})
