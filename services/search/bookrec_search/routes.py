"""Thin HTTP handlers: validate, ask the index (or the GSI while it loads), shape the response."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK

from bookrec_common.catalog import normalise_text
from bookrec_common.errors import DependencyUnavailable, ValidationFailed

from bookrec_search.engine import SearchEngine
from bookrec_search.index import Filters, SearchIndex, autocomplete_order
from bookrec_search.models import (AdvancedSearchRequest, AdvancedSearchResponse, AutocompleteResponse, BookSummary,
                                   SearchRequest, SearchResponse)

MIN_QUERY = 2
QueryLimit = Annotated[int, Parameter(ge=1, le=100, description="1..100")]
QueryOffset = Annotated[int, Parameter(ge=0, le=10_000, description="0..10,000")]
PrefixLimit = Annotated[int, Parameter(ge=1, le=50, description="1..50")]


def _invalid(field: str, message: str, source: str = "body") -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message, "source": source}])


def _live_index(engine: SearchEngine) -> SearchIndex:
    if engine.index is None:
        raise DependencyUnavailable("the search index is still loading; retry shortly", code="index_loading")
    return engine.index


def _summary(index: SearchIndex, position: int, score: float) -> BookSummary:
    year = int(index.years[position])
    return BookSummary(book_id=index.book_ids[position], title=index.titles[position],
                       authors=index.authors_of(position), first_publish_year=None if year == -2**31 else year,
                       avg_rating=round(float(index.avg_rating[position]), 4),
                       rating_count=int(index.rating_count[position]), cover_id=index.cover_ids[position],
                       score=round(score, 4))


def _full_text(engine: SearchEngine, query: str, limit: int, offset: int, source: str) -> SearchResponse:
    if len(normalise_text(query)) < MIN_QUERY:
        raise _invalid("query" if source == "body" else "q",
                       f"needs at least {MIN_QUERY} letters or digits after normalisation", source)
    index = _live_index(engine)
    result = index.search(query, limit, offset)
    items = [_summary(index, h.position, h.score) for h in result.hits]
    return SearchResponse(query=query, total=result.total, count=len(items), offset=offset, limit=limit,
                          matched="all_words" if result.matched_all_words else "any_word", items=items)


@post("/search", status_code=HTTP_200_OK, summary="Ranked full-text search over titles, authors and subjects")
async def search_post(data: JSONBody[SearchRequest], engine: NamedDependency[SearchEngine]) -> SearchResponse:
    return _full_text(engine, data.query, data.limit, data.offset, "body")


@get("/search", summary="Ranked full-text search (cacheable GET form)")
async def search_get(engine: NamedDependency[SearchEngine], q: Annotated[str, Parameter(max_length=500)],
                     limit: QueryLimit = 20, offset: QueryOffset = 0) -> SearchResponse:
    return _full_text(engine, q, limit, offset, "query")


@post("/search/advanced", status_code=HTTP_200_OK, summary="Filters (AND) and sorts")
async def search_advanced(data: JSONBody[AdvancedSearchRequest],
                          engine: NamedDependency[SearchEngine]) -> AdvancedSearchResponse:
    applied: dict[str, Any] = {k: getattr(data, k) for k in ("title", "author", "subject", "min_year", "max_year",
                                                              "min_rating", "language")
                               if getattr(data, k) not in (None, "")}
    for text_field in ("title", "author", "subject"):
        if text_field in applied and not normalise_text(applied[text_field]):
            raise _invalid(text_field, "has no letters or digits")
    if not applied:
        raise ValidationFailed("give at least one criterion: title, author, subject, min_year, max_year, "
                               "min_rating or language", errors=[{"field": "body", "message": "no criterion",
                                                                   "source": "body"}])
    if data.min_year is not None and data.max_year is not None and data.min_year > data.max_year:
        raise _invalid("min_year", "must not be after max_year")
    if data.min_rating is not None and not 0 <= data.min_rating <= 5:
        raise _invalid("min_rating", "must be within 0..5")
    order = data.order or ("asc" if data.sort == "title" else "desc")
    index = _live_index(engine)
    result = index.advanced(Filters(**applied), data.sort, order, data.limit, data.offset)
    items = [_summary(index, h.position, h.score if data.sort == "relevance" else 0.0) for h in result.hits]
    return AdvancedSearchResponse(filters_applied=applied, sort=data.sort, order=order, total=result.total,
                                  count=len(items), offset=data.offset, limit=data.limit, items=items)


async def _autocomplete(engine: SearchEngine, prefix: str, limit: int, field: str) -> AutocompleteResponse:
    if not normalise_text(prefix):
        raise _invalid(field, "needs at least one letter or digit", "path" if field == "prefix" else "query")
    if engine.index is not None:
        index = engine.index
        items = [_summary(index, p, 0.0) for p in index.autocomplete(prefix, limit)]
        return AutocompleteResponse(prefix=prefix, source="index", count=len(items), items=items)
    # The index is loading or disabled: the same answer from the title-prefix GSI.
    records = autocomplete_order(await engine.source.titles_with_prefix(prefix))[:limit]
    items = [BookSummary(book_id=r["book_id"], title=r.get("title", ""),
                         authors=[a.get("name", "") for a in r.get("authors", [])],
                         first_publish_year=r.get("first_publish_year"),
                         avg_rating=round(r["rating_sum"] / r["rating_count"], 4) if r.get("rating_count") else 0.0,
                         rating_count=int(r.get("rating_count", 0)), cover_id=r.get("cover_id"), score=0.0)
             for r in records]
    return AutocompleteResponse(prefix=prefix, source="dynamodb", count=len(items), items=items)


@get("/search/autocomplete", summary="Titles starting with a prefix, most popular first")
async def autocomplete(engine: NamedDependency[SearchEngine], q: Annotated[str, Parameter(max_length=200)],
                       limit: PrefixLimit = 10) -> AutocompleteResponse:
    return await _autocomplete(engine, q, limit, "q")


@get("/search/shard/{prefix:str}", summary="Title prefix autocomplete (compatibility path)")
async def autocomplete_shard(engine: NamedDependency[SearchEngine], prefix: FromPath[str],
                             limit: PrefixLimit = 10) -> AutocompleteResponse:
    if len(prefix) > 200:
        raise _invalid("prefix", "at most 200 characters", "path")
    return await _autocomplete(engine, prefix, limit, "prefix")
