"""Thin HTTP handlers: validate, ask the index (or the GSI while it loads), shape the response."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK

from bookrec_common.catalog import has_word_character, normalise_text
from bookrec_common.errors import DependencyUnavailable, ValidationFailed, decode_strictly

from bookrec_search.engine import SearchEngine
from bookrec_search.index import Filters, SearchIndex, book_summary
from bookrec_search.models import (AdvancedSearchRequest, AdvancedSearchResponse, AutocompleteResponse,
                                   BookSummary, Correction, SearchRequest, SearchResponse)

MAX_PREFIX = 200
QueryText = Annotated[str, Parameter(min_length=1, max_length=500, description="words to find")]
QueryLimit = Annotated[int, Parameter(ge=1, le=100, description="1..100")]
QueryOffset = Annotated[int, Parameter(ge=0, le=10_000, description="0..10,000")]
Prefix = Annotated[str, Parameter(min_length=1, max_length=MAX_PREFIX, description="start of a title")]
PrefixLimit = Annotated[int, Parameter(ge=1, le=50, description="1..50")]


def _invalid(field: str, message: str, source: str = "body") -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}",
                            errors=[{"field": field, "message": message, "source": source}])


def _live_index(engine: SearchEngine) -> SearchIndex:
    if engine.index is None:
        if not engine.enabled:
            raise DependencyUnavailable("full-text search is switched off on this deployment",
                                        code="index_disabled")
        raise DependencyUnavailable("the search index is still loading; retry shortly", code="index_loading",
                                    headers={"Retry-After": "5"})
    return engine.index


def _summary(index: SearchIndex, position: int, score: float) -> BookSummary:
    return BookSummary(**index.book(position), score=round(score, 4))


def _full_text(engine: SearchEngine, query: str, limit: int, offset: int, field: str,
               source: str) -> SearchResponse:
    if not has_word_character(query):
        raise _invalid(field, "needs at least one letter or digit", source)
    index = _live_index(engine)
    result = index.search(query, limit, offset)
    items = [_summary(index, h.position, h.score) for h in result.hits]
    corrections = [Correction(word=w, corrected_to=terms) for w, terms in result.corrections.items()]
    return SearchResponse(query=query, total=result.total, count=len(items), offset=offset, limit=limit,
                          matched="all_words" if result.matched_all_words else "any_word", items=items,
                          corrections=corrections)


SEARCH_DESCRIPTION = (
    "Words of every script (Chinese, Japanese and Thai by character pairs), accents and case ignored; "
    "a book's original title counts as its title. All words must match; when no book has them all, any "
    "word matches (`matched`: any_word). Typos are forgiven: words of 5 or more characters match words "
    "one edit away, of 9 or more two edits away (a swap of neighbours is one edit); exact matches rank "
    "first, and `corrections` names the words found only through a correction and what they matched. "
    "The last word also matches as the start of a longer word unless the query ends with a space. A "
    "valid ISBN-13 or ISBN-10 (hyphens and spaces allowed) puts the books carrying it first. Refused "
    "(400) only when the query has no letter or digit at all.")


@post("/search", status_code=HTTP_200_OK, summary="Ranked full-text search over titles, authors and subjects",
      description=SEARCH_DESCRIPTION)
async def search_post(request: Request, data: JSONBody[SearchRequest],
                      engine: NamedDependency[SearchEngine]) -> SearchResponse:
    body: SearchRequest = decode_strictly(await request.body(), SearchRequest)
    return _full_text(engine, body.query, body.limit, body.offset, "query", "body")


@get("/search", summary="Ranked full-text search (cacheable GET form)", description=SEARCH_DESCRIPTION)
async def search_get(engine: NamedDependency[SearchEngine], q: QueryText, limit: QueryLimit = 20,
                     offset: QueryOffset = 0) -> SearchResponse:
    return _full_text(engine, q, limit, offset, "q", "query")


@post("/search/advanced", status_code=HTTP_200_OK, summary="Filters (all apply) and sorts",
      description="Books without a year (year sort) or without ratings (rating sort) come last in "
                  "either order; ties: more popular first, then title A..Z.")
async def search_advanced(request: Request, data: JSONBody[AdvancedSearchRequest],
                          engine: NamedDependency[SearchEngine]) -> AdvancedSearchResponse:
    body: AdvancedSearchRequest = decode_strictly(await request.body(), AdvancedSearchRequest)
    applied: dict[str, Any] = {name: getattr(body, name) for name in Filters.__dataclass_fields__
                               if getattr(body, name) is not None}
    for name in ("title", "author", "subject"):
        if name in applied and not normalise_text(applied[name]):
            raise _invalid(name, "needs at least one letter or digit")
    if not applied:
        raise _invalid("body", "give at least one criterion: title, author, subject, min_year, max_year, "
                               "min_rating or language")
    if body.min_year is not None and body.max_year is not None and body.min_year > body.max_year:
        raise _invalid("min_year", "must not be after max_year")
    order = body.order or ("asc" if body.sort == "title" else "desc")
    index = _live_index(engine)
    result = index.advanced(Filters(**applied), body.sort, order, body.limit, body.offset)
    items = [_summary(index, h.position, h.score if body.sort == "relevance" else 0.0) for h in result.hits]
    return AdvancedSearchResponse(filters_applied=applied, sort=body.sort, order=order, total=result.total,
                                  count=len(items), offset=body.offset, limit=body.limit, items=items)


async def _autocomplete(engine: SearchEngine, prefix: str, limit: int, field: str,
                        source: str) -> AutocompleteResponse:
    normalised = normalise_text(prefix)
    if not normalised:
        raise _invalid(field, "needs at least one letter or digit", source)
    if engine.index is not None:
        index = engine.index
        suggestions = index.autocomplete(normalised, limit)
        items = [_summary(index, p, 0.0) for p in suggestions.positions]
        return AutocompleteResponse(query=prefix, total=suggestions.total, count=len(items), offset=0,
                                    limit=limit, source="index", items=items)
    # The index is loading or off: the same answer from the title-prefix GSI.
    total, best = await engine.suggestions_from_table(normalised)
    items = [BookSummary(**book_summary(r), score=0.0) for r in best[:limit]]
    return AutocompleteResponse(query=prefix, total=total, count=len(items), offset=0, limit=limit,
                                source="dynamodb", items=items)


@get("/search/autocomplete", summary="Titles starting with a prefix, most rated first",
     description="Any script; accents and case ignored. Answered from the index, or from the title-prefix "
                 "index of the books table while the index loads (`source`).")
async def autocomplete(engine: NamedDependency[SearchEngine], q: Prefix,
                       limit: PrefixLimit = 10) -> AutocompleteResponse:
    return await _autocomplete(engine, q, limit, "q", "query")


@get("/search/shard/{prefix:str}", summary="Title prefix autocomplete (compatibility path)",
     description="The same answer as `/search/autocomplete?q=`: any script, accents and case ignored.")
async def autocomplete_shard(engine: NamedDependency[SearchEngine], prefix: FromPath[str],
                             limit: PrefixLimit = 10) -> AutocompleteResponse:
    if len(prefix) > MAX_PREFIX:
        raise _invalid("prefix", f"at most {MAX_PREFIX} characters", "path")
    return await _autocomplete(engine, prefix, limit, "prefix", "path")
