"""What a correct answer of each route looks like, beyond its status code.

Each check raises ContractViolation with a short reason; the locustfile turns
that into a failed request. Pure functions over decoded bodies: no locust, no
I/O, so they are unit-tested on their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any, TypeVar

import msgspec

from bookrec_catalog.catalog import is_book_id, normalise_text
from loadtest import contract

T = TypeVar("T")
STARS = ("1", "2", "3", "4", "5")
_decoders: dict[type, msgspec.json.Decoder] = {}


class ContractViolation(Exception):
    """A response that breaks the HTTP contract (wrong status, shape or content)."""


def decode(body: bytes | None, shape: type[T]) -> T:
    decoder = _decoders.get(shape)
    if decoder is None:
        decoder = _decoders[shape] = msgspec.json.Decoder(shape)
    try:
        return decoder.decode(body or b"")
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise ContractViolation(f"{shape.__name__}: {exc}") from None


def describe_error(status: int, body: bytes | None) -> str:
    """One line for a failure report: the status and, when it is Problem Details, its title and detail."""
    try:
        problem = msgspec.json.decode(body or b"", type=contract.Problem)
    except msgspec.DecodeError:
        return f"HTTP {status}: {(body or b'')[:120]!r}"
    detail = f": {problem.detail}" if problem.detail else ""
    return f"HTTP {status} {problem.code or problem.title}{detail}"[:300]


def check_status(status: int, expected: Iterable[int], body: bytes | None) -> None:
    if status not in expected:
        raise ContractViolation(describe_error(status, body))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractViolation(message)


def check_aggregates(distribution: Mapping[str, int], count: int, average: float, what: str) -> None:
    """Distribution, count and average of one book must describe the same ratings (they change atomically)."""
    _require(sorted(distribution) == list(STARS), f"{what}: distribution keys {sorted(distribution)}")
    _require(all(n >= 0 for n in distribution.values()), f"{what}: negative count in {distribution}")
    total = sum(distribution.values())
    _require(total == count, f"{what}: distribution sums to {total}, count says {count}")
    expected = sum(int(star) * n for star, n in distribution.items()) / count if count else 0.0
    _require(abs(expected - average) <= 0.01, f"{what}: average {average} but distribution gives {expected:.4f}")


def _check_page(page: contract.SearchPage, limit: int, offset: int) -> None:
    _require(page.count == len(page.items), f"count {page.count} but {len(page.items)} items")
    _require(page.count <= limit, f"{page.count} items exceed limit {limit}")
    _require(page.limit == limit and page.offset == offset,
             f"paging echoed as limit={page.limit} offset={page.offset}, asked {limit}/{offset}")
    _require(page.total >= offset + page.count or page.count == 0,
             f"total {page.total} is less than offset {offset} + count {page.count}")
    ids = [item.book_id for item in page.items]
    _require(len(set(ids)) == len(ids), "the same book appears twice in one page")
    bad = [b for b in ids if not is_book_id(b)]
    _require(not bad, f"malformed book ids {bad[:3]}")


def check_search(page: contract.SearchPage, *, query: str, limit: int, offset: int, expect_results: bool) -> None:
    """A full-text page: consistent paging, ranked by score, and hits where the catalogue has them."""
    _check_page(page, limit, offset)
    _require(page.query is not None, "search response lacks `query`")
    if expect_results:
        _require(page.count > 0, f"no results for {query!r}, which matches catalogue books")
    scores = [item.score for item in page.items]
    _require(all(a >= b for a, b in pairwise(scores)), "results are not ranked by score")


def check_autocomplete(page: contract.SearchPage, *, prefix: str, limit: int) -> None:
    """Every suggestion's title starts with what was typed; a prefix of a real title always suggests something."""
    _check_page(page, limit, 0)
    typed = normalise_text(prefix)
    _require(page.count > 0, f"no suggestions for {prefix!r}, a prefix of a catalogue title")
    wrong = [item.title for item in page.items if not normalise_text(item.title).startswith(typed)]
    _require(not wrong, f"suggestions for {prefix!r} that do not start with it: {wrong[:2]}")


def check_advanced(page: contract.SearchPage, *, criteria: Mapping[str, Any], limit: int, offset: int,
                   expect_results: bool) -> None:
    """Filters visible in a summary (years, rating) hold for every hit; the requested sort holds."""
    _check_page(page, limit, offset)
    if expect_results:
        _require(page.count > 0, f"no results for {dict(criteria)}, which match catalogue books")
    min_year, max_year = criteria.get("min_year"), criteria.get("max_year")
    for item in page.items:
        year = item.first_publish_year
        if min_year is not None:
            _require(year is not None and year >= min_year, f"{item.book_id} year {year} < min_year {min_year}")
        if max_year is not None:
            _require(year is not None and year <= max_year, f"{item.book_id} year {year} > max_year {max_year}")
        if criteria.get("min_rating") is not None:
            _require(item.avg_rating >= criteria["min_rating"],
                     f"{item.book_id} rating {item.avg_rating} < min_rating {criteria['min_rating']}")
    sort, descending = criteria.get("sort"), criteria.get("order", "desc") == "desc"
    keys = {"year": lambda i: i.first_publish_year, "rating": lambda i: i.avg_rating}.get(sort or "")
    if keys is not None:
        values = [keys(item) for item in page.items if keys(item) is not None]
        pairs = list(pairwise(values))
        ordered = all(a >= b for a, b in pairs) if descending else all(a <= b for a, b in pairs)
        _require(ordered, f"results are not sorted by {sort} {'desc' if descending else 'asc'}")


def check_book(book: contract.Book, *, book_id: str) -> None:
    _require(book.book_id == book_id, f"asked for {book_id}, got {book.book_id}")
    _require(bool(book.title), f"{book_id} has an empty title")
    check_aggregates(book.ratings_distribution, book.rating_count, book.avg_rating, book_id)


def check_batch(batch: contract.Batch, *, requested: list[str], known: Iterable[str] = ()) -> None:
    """Order of first appearance kept, every id either returned or listed missing, known ids never missing."""
    wanted = list(dict.fromkeys(requested))
    returned = [book.book_id for book in batch.items]
    _require(batch.count == len(returned), f"count {batch.count} but {len(returned)} items")
    _require(set(returned) | set(batch.missing) == set(wanted), "some requested ids are neither returned nor missing")
    _require(returned == [b for b in wanted if b not in set(batch.missing)],
             "items are not the requested ids in request order")
    lost = set(known) & set(batch.missing)
    _require(not lost, f"catalogue books reported missing: {sorted(lost)[:3]}")
    for book in batch.items:
        check_aggregates(book.ratings_distribution, book.rating_count, book.avg_rating, book.book_id)


NOT_KNOWN = object()


def check_rate(rate: contract.Rate, *, status: int, book_id: str, user_id: str, rating: int,
               previous: int | object | None = NOT_KNOWN) -> None:
    """Echoes the rating; 201 means no previous rating, 200 a re-rating; previous_rating is the one we gave."""
    _require((rate.book_id, rate.user_id, rate.rating) == (book_id, user_id, rating),
             f"echoed {(rate.book_id, rate.user_id, rate.rating)}, sent {(book_id, user_id, rating)}")
    _require((status == 201) == (rate.previous_rating is None),
             f"status {status} with previous_rating {rate.previous_rating}")
    if previous is not NOT_KNOWN:
        _require(rate.previous_rating == previous, f"previous_rating {rate.previous_rating}, we had rated {previous}")


def _newest_first(stamps: list[str], what: str) -> None:
    _require(all(a >= b for a, b in pairwise(stamps)), f"{what} are not newest first")


def check_book_ratings(page: contract.BookRatings, *, book_id: str, limit: int) -> None:
    _require(page.book_id == book_id, f"asked for {book_id}, got {page.book_id}")
    check_aggregates(page.ratings_distribution, page.total_ratings, page.average_rating, book_id)
    _require(len(page.ratings) <= limit, f"{len(page.ratings)} ratings exceed limit {limit}")
    _require(len(page.ratings) <= page.total_ratings, "more ratings listed than the book has")
    _require(all(1 <= r.rating <= 5 for r in page.ratings), "a rating outside 1..5")
    _newest_first([r.updated_at for r in page.ratings], "book ratings")


def check_user_ratings(page: contract.UserRatings, *, user_id: str, limit: int,
                       must_contain: Mapping[str, int] | None = None) -> None:
    """Newest first; when we know this user's latest ratings, they are there with the values we sent."""
    _require(page.user_id == user_id, f"asked for {user_id}, got {page.user_id}")
    _require(page.count == len(page.ratings), f"count {page.count} but {len(page.ratings)} ratings")
    _require(page.count <= limit, f"{page.count} ratings exceed limit {limit}")
    _require(all(1 <= r.rating <= 5 for r in page.ratings), "a rating outside 1..5")
    _newest_first([r.updated_at for r in page.ratings], "user ratings")
    listed = {r.book_id: r.rating for r in page.ratings}
    _require(len(listed) == len(page.ratings), "the same book listed twice")
    for book_id, rating in (must_contain or {}).items():
        _require(listed.get(book_id) == rating,
                 f"just rated {book_id} {rating}, the user's ratings show {listed.get(book_id)}")


def check_recommendations(reco: contract.Recommendations, *, user_id: str, limit: int,
                          already_rated: Iterable[str] = ()) -> None:
    """Something to recommend (cold start included), no duplicates, nothing the user has rated."""
    _require(reco.user_id == user_id, f"asked for {user_id}, got {reco.user_id}")
    ids = [r.book_id for r in reco.recommendations]
    _require(0 < len(ids) <= limit, f"{len(ids)} recommendations for limit {limit}")
    _require(len(set(ids)) == len(ids), "the same book recommended twice")
    rated = set(already_rated) & set(ids)
    _require(not rated, f"recommends books the user already rated: {sorted(rated)[:3]}")
    scores = [r.score for r in reco.recommendations]
    _require(all(a >= b for a, b in pairwise(scores)), "recommendations are not ranked by score")


def check_shelving(result: contract.Shelving, *, status: int, book_id: str, user_id: str, shelf: str,
                   previous: object = NOT_KNOWN) -> None:
    """Echoes the shelving; 201 means the book was on no shelf, 200 moved (or already there)."""
    _require((result.book_id, result.user_id, result.shelf) == (book_id, user_id, shelf),
             f"echoed {(result.book_id, result.user_id, result.shelf)}, sent {(book_id, user_id, shelf)}")
    _require((status == 201) == (result.previous_shelf is None),
             f"status {status} with previous_shelf {result.previous_shelf}")
    if previous is not NOT_KNOWN:
        _require(result.previous_shelf == previous, f"previous_shelf {result.previous_shelf}, we had {previous}")


def check_shelf(page: contract.ReaderShelf, *, user_id: str, shelf: str, limit: int,
                must_contain: Iterable[str] = ()) -> None:
    """Newest first, each book once; the books we just put there are listed, with their titles."""
    _require((page.user_id, page.shelf) == (user_id, shelf), f"asked for {(user_id, shelf)}, got "
             f"{(page.user_id, page.shelf)}")
    _require(page.count == len(page.items) <= limit, f"count {page.count}, {len(page.items)} items, limit {limit}")
    _newest_first([i.shelved_at for i in page.items], "shelved books")
    listed = {i.book_id: i for i in page.items}
    _require(len(listed) == len(page.items), "the same book shelved twice")
    for book_id in must_contain:
        _require(book_id in listed, f"just shelved {book_id}, the shelf does not show it")
        _require(bool(listed[book_id].title), f"shelved {book_id} is listed without its title")


def check_similar(similar: contract.SimilarBooks, *, book_id: str, limit: int) -> None:
    """Something like the book (the catalogue always has more books), never the book itself, each once,
    ranked by score, each with a reason."""
    _require(similar.book_id == book_id, f"asked for {book_id}, got {similar.book_id}")
    ids = [i.book_id for i in similar.items]
    _require(0 < len(ids) <= limit, f"{len(ids)} similar books for limit {limit}")
    _require(book_id not in ids, "the book is listed as similar to itself")
    _require(len(set(ids)) == len(ids), "the same book listed twice")
    _require(all(i.reason and i.title for i in similar.items), "a similar book without title or reason")
    if similar.user_id is None:  # a reader's list is ranked by their own recommendations, not by score
        _require(all(a >= b for a, b in pairwise(i.score for i in similar.items)),
                 "similar books not ranked by score")


def check_trending(trending: contract.Trending, *, window: str, limit: int) -> None:
    """The window asked for; each book once, ranked by score, with at least one event."""
    _require(trending.window == window, f"asked for {window}, got {trending.window}")
    ids = [i.book_id for i in trending.items]
    _require(len(ids) <= limit and len(set(ids)) == len(ids), f"{len(ids)} books (limit {limit}) or duplicates")
    _require(all(i.events > 0 and i.title for i in trending.items), "a trending book without events or title")
    _require(all(a >= b for a, b in pairwise(i.score for i in trending.items)), "trending not ranked by score")
