"""What the load test asks for, drawn from the loaded catalogue through the public API.

Nothing is hard-coded but a handful of probe words: searching for them
returns real books, whose ids, titles, authors, years and subjects become the
pools every simulated user samples from; raters of the most rated books become
the users whose recommendations are read. Every derived query is tried once
and kept only if it finds something, so "no results" during the run is a
real failure, not a bad guess.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bookrec_catalog.catalog import normalise_text

# Common words of book titles and subjects, in English: the only fixed input.
PROBE_WORDS = ("history", "life", "love", "world", "philosophy", "war", "art", "story", "theory", "science",
               "mind", "god", "nature", "death", "book", "time", "man", "new", "house", "night", "king",
               "great", "introduction", "guide", "girl", "dark", "secret", "lost", "city", "last")
PAGE = 100
MIN_TOKEN = 3

# fetch(method, path, json_body) -> (status, decoded JSON or None)
Fetch = Callable[[str, str, Any], tuple[int, Any]]


class CatalogueUnavailable(RuntimeError):
    """The API gave nothing to sample from (empty catalogue, routes not built, stack down)."""


@dataclass
class Catalogue:
    books: dict[str, str] = field(default_factory=dict)  # book_id -> title
    popular: list[str] = field(default_factory=list)  # book ids, most rated first
    queries: list[str] = field(default_factory=list)  # full-text queries known to find books
    authors: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    users: list[str] = field(default_factory=list)  # real raters (their recommendations are read)
    typable: list[tuple[str, str]] = field(default_factory=list)  # (book_id, title) someone can type in Latin script

    @property
    def book_ids(self) -> list[str]:
        return list(self.books)

    def summary(self) -> dict[str, int]:
        return {"books": len(self.books), "typable_titles": len(self.typable), "queries": len(self.queries),
                "authors": len(self.authors), "subjects": len(self.subjects), "years": len(self.years),
                "users": len(self.users)}


def title_tokens(title: str) -> list[str]:
    return [t for t in normalise_text(title).split() if len(t) >= MIN_TOKEN]


def queries_from_title(title: str) -> list[str]:
    """Queries a user might type for this book: its longest word, and two words of it together."""
    tokens = title_tokens(title)
    if not tokens:
        return []
    longest = max(tokens, key=len)
    queries = [longest]
    if len(tokens) >= 2:
        queries.append(f"{tokens[0]} {tokens[1]}")
    return queries


def typing_prefixes(title: str, max_chars: int = 16) -> list[str]:
    """What an autocomplete box sends while someone types the title: one more character each time.

    Prefixes that normalise to nothing (a leading quote, a trailing space
    after punctuation) are skipped, as a client would not send them.
    """
    out: list[str] = []
    for end in range(1, min(len(title), max_chars) + 1):
        prefix = title[:end]
        if normalise_text(prefix) and prefix[-1] != " ":
            out.append(prefix)
    return out


def urllib_fetch(base_url: str, timeout: float = 30.0) -> Fetch:
    base = base_url.rstrip("/")

    def fetch(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  "X-Request-ID": "loadtest-discovery"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, OSError, ValueError):
            return 0, None

    return fetch


def discover(fetch: Fetch, *, seed: int = 7, max_books: int = 3000, max_queries: int = 300,
             max_users: int = 200, rated_books_probed: int = 25, workers: int = 8) -> Catalogue:
    rng = random.Random(seed)
    cat = Catalogue()
    summaries: dict[str, dict] = {}

    def search(word: str) -> list[dict]:
        status, body = fetch("GET", f"/search?q={urllib.parse.quote(word)}&limit={PAGE}&offset=0", None)
        return body.get("items", []) if status == 200 and isinstance(body, dict) else []

    with ThreadPoolExecutor(workers) as pool:
        for items in pool.map(search, PROBE_WORDS):
            for item in items:
                summaries.setdefault(item["book_id"], item)
        status, body = fetch("POST", "/search/advanced", {"min_rating": 0, "sort": "rating", "limit": PAGE})
        if status == 200 and isinstance(body, dict):
            for item in body.get("items", []):
                summaries.setdefault(item["book_id"], item)
        if not summaries:
            raise CatalogueUnavailable(f"searching for {len(PROBE_WORDS)} common words found no books "
                                       f"(last status {status}): is the catalogue loaded and search up?")

        chosen = list(summaries.values())
        rng.shuffle(chosen)
        chosen = chosen[:max_books]
        cat.books = {s["book_id"]: s["title"] for s in chosen if s.get("title")}
        cat.typable = [(b, t) for b, t in cat.books.items() if len(typing_prefixes(t)) >= 3]
        cat.popular = [s["book_id"] for s in sorted(chosen, key=lambda s: -s.get("rating_count", 0))]
        cat.authors = sorted({a for s in chosen for a in s.get("authors", []) if len(normalise_text(a)) >= MIN_TOKEN})
        cat.years = sorted({s["first_publish_year"] for s in chosen if s.get("first_publish_year")})

        candidates = list(dict.fromkeys(q for s in chosen for q in queries_from_title(s["title"])))
        rng.shuffle(candidates)
        candidates = candidates[: max_queries * 2]
        found = list(pool.map(lambda q: bool(search(q)), candidates))
        cat.queries = [q for q, ok in zip(candidates, found, strict=True) if ok][:max_queries]

        status, body = fetch("POST", "/books/batch", {"book_ids": cat.popular[:100]})
        if status == 200 and isinstance(body, dict):
            cat.subjects = sorted({s for book in body.get("items", []) for s in book.get("subjects", [])
                                   if len(normalise_text(s)) >= MIN_TOKEN})

        def raters(book_id: str) -> list[str]:
            status, body = fetch("GET", f"/books/{book_id}/ratings?limit=50", None)
            return [r["user_id"] for r in body.get("ratings", [])] if status == 200 and isinstance(body, dict) else []

        users: dict[str, None] = {}
        for found_users in pool.map(raters, cat.popular[:rated_books_probed]):
            users.update(dict.fromkeys(found_users))
        cat.users = list(users)[:max_users]

    if not cat.queries:
        raise CatalogueUnavailable("no query drawn from catalogue titles finds anything through /search")
    return cat
