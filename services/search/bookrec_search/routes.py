"""Thin HTTP handlers: validate, ask the index (or the GSI while it loads), shape the response."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK

from bookrec_catalog.catalog import has_word_character, normalise_text
from bookrec_common.errors import DependencyUnavailable, decode_strictly, invalid
from bookrec_search.documents import book_summary
from bookrec_search.facets import FacetFilter, exhaustive
from bookrec_search.filtering import Filters
from bookrec_search.highlight import ranges
from bookrec_search.index import SearchIndex, SearchResult
from bookrec_search.live import LiveIndex
from bookrec_search.models import (
    MAX_FACET_VALUES,
    AdvancedSearchRequest,
    AdvancedSearchResponse,
    AutocompleteResponse,
    BookSummary,
    Correction,
    FacetFilters,
    Facets,
    FacetValue,
    Highlights,
    Language,
    Options,
    SearchRequest,
    SearchResponse,
    Series,
    Year,
)

MAX_PREFIX = 200
QueryText = Annotated[str, Parameter(min_length=1, max_length=500, description="words to find")]
QueryLimit = Annotated[int, Parameter(ge=1, le=100, description="1..100")]
QueryOffset = Annotated[int, Parameter(ge=0, le=10_000, description="0..10,000")]
Prefix = Annotated[str, Parameter(min_length=1, max_length=MAX_PREFIX, description="start of a title")]
PrefixLimit = Annotated[int, Parameter(ge=1, le=50, description="1..50")]
FacetValues = Annotated[list[str] | None, Parameter(max_items=MAX_FACET_VALUES, description="repeatable")]
Decades = Annotated[list[Year] | None, Parameter(max_items=MAX_FACET_VALUES, description="repeatable: 1990")]
Languages = Annotated[list[Language] | None, Parameter(max_items=MAX_FACET_VALUES, description="repeatable")]
Wanted = Annotated[bool, Parameter(description="on request: see the description")]


def _live_index(live: LiveIndex) -> SearchIndex:
    if live.index is None:
        if not live.enabled:
            raise DependencyUnavailable("full-text search is switched off on this deployment",
                                        code="index_disabled")
        raise DependencyUnavailable("the search index is still loading; retry shortly", code="index_loading",
                                    headers={"Retry-After": "5"})
    return live.index


def _book_summary(fields: dict[str, Any], score: float) -> BookSummary:
    """A hit from the summary fields of the index (`SearchIndex.book`) or of a table item (`book_summary`)."""
    series = fields.pop("series")
    return BookSummary(**fields, score=score, series=Series(**series) if series else None)


def _summary(index: SearchIndex, position: int, score: float) -> BookSummary:
    return _book_summary(index.book(position), round(score, 4))


def _facet_filter(options: Options) -> FacetFilter | None:
    wanted = options.facet_filters
    if wanted is None:
        return None
    chosen = FacetFilter(tuple(wanted.authors), tuple(wanted.subjects), tuple(wanted.decades),
                         tuple(wanted.languages))
    return chosen or None


def _items(index: SearchIndex, result: SearchResult, options: Options, scored: bool = True) -> list[BookSummary]:
    """The page's hits, with the character ranges of the words they matched when asked for."""
    matched = {term for terms in result.terms.values() for term in terms} if options.highlight else set()
    items = []
    for hit in result.hits:
        item = _summary(index, hit.position, hit.shown_score if scored else 0.0)
        if options.highlight:
            item.highlights = Highlights(title=ranges(item.title, matched),
                                         authors=[ranges(name, matched) for name in item.authors])
        items.append(item)
    return items


def _facets(index: SearchIndex, result: SearchResult, options: Options) -> Facets | None:
    if not options.facets or result.matches is None:
        return None
    counts = index.facets(result.matches)
    return Facets(**{name: [FacetValue(c.value, c.count) for c in values] for name, values in counts.items()},
                  exhaustive=exhaustive(len(result.matches)))


def _full_text(live: LiveIndex, query: str, limit: int, offset: int, field: str, source: str,
               options: Options) -> SearchResponse:
    if not has_word_character(query):
        raise invalid(field, "needs at least one letter or digit", source)
    index = _live_index(live)
    result = index.search(query, limit, offset, with_matches=options.facets,
                          facet_filter=_facet_filter(options))
    items = _items(index, result, options)
    corrections = [Correction(word=w, corrected_to=terms) for w, terms in result.corrections.items()]
    return SearchResponse(query=query, total=result.total, count=len(items), offset=offset, limit=limit,
                          matched="all_words" if result.matched_all_words else "any_word", items=items,
                          corrections=corrections, facets=_facets(index, result, options),
                          ignored_words=result.ignored)


SEARCH_DESCRIPTION = (
    "Words of every script (Chinese, Japanese and Thai by character pairs), accents and case ignored; "
    "a book's original title counts as its title. All words must match; when no book has them all, any "
    "word matches (`matched`: any_word). Typos are forgiven: words of 5 or more characters match words "
    "one edit away, of 9 or more two edits away (a swap of neighbours is one edit); exact matches rank "
    "first, and `corrections` names the words found only through a correction and what they matched. "
    "The last word also matches as the start of a longer word unless the query ends with a space. A "
    "valid ISBN-13 or ISBN-10 (hyphens and spaces allowed) puts the books carrying it first. Bounds: "
    "the first 16 words take part (a Chinese, Japanese or Thai character pair is a word), later ones are "
    "ignored and listed in `ignored_words`, as are, in an any-word answer, the commonest words once the "
    "rarer ones match a million books' worth; a word longer than 24 characters is matched as typed, never "
    "completed or corrected. Refused (400) only when the query has no letter or digit at all. On "
    "request: `facets` counts authors, subjects, decade and language over all matches (estimated from an "
    "even sample past 20,000 matches: `exhaustive` false), `facet_filters` keeps books with any of the "
    "values given per facet (every facet given must hold), and `highlight` gives each hit the character "
    "ranges [start, end) of its matched words in its title and authors.")


@post("/search", status_code=HTTP_200_OK, summary="Ranked full-text search over titles, authors and subjects",
      description=SEARCH_DESCRIPTION)
async def search_post(request: Request, data: JSONBody[SearchRequest],
                      live: NamedDependency[LiveIndex]) -> SearchResponse:
    body: SearchRequest = decode_strictly(await request.body(), SearchRequest)
    return _full_text(live, body.query, body.limit, body.offset, "query", "body", body)


@get("/search", summary="Ranked full-text search (cacheable GET form)", description=SEARCH_DESCRIPTION)
async def search_get(live: NamedDependency[LiveIndex], q: QueryText, limit: QueryLimit = 20,
                     offset: QueryOffset = 0, facets: Wanted = False, highlight: Wanted = False,
                     author: FacetValues = None, subject: FacetValues = None, decade: Decades = None,
                     language: Languages = None) -> SearchResponse:
    wanted = FacetFilters(authors=author or [], subjects=subject or [], decades=decade or [],
                          languages=language or [])
    options = Options(facets=facets, highlight=highlight, facet_filters=wanted)
    return _full_text(live, q, limit, offset, "q", "query", options)


@post("/search/advanced", status_code=HTTP_200_OK, summary="Filters (all apply) and sorts",
      description="Books without a year (year sort) or without ratings (rating sort) come last in "
                  "either order; ties: more popular first, then title A..Z. `facets`, `facet_filters` and "
                  "`highlight` as in full-text search; facet filters alone are a criterion.")
async def search_advanced(request: Request, data: JSONBody[AdvancedSearchRequest],
                          live: NamedDependency[LiveIndex]) -> AdvancedSearchResponse:
    body: AdvancedSearchRequest = decode_strictly(await request.body(), AdvancedSearchRequest)
    applied: dict[str, Any] = {name: getattr(body, name) for name in Filters.__dataclass_fields__
                               if getattr(body, name) is not None}
    for name in ("title", "author", "subject"):
        if name in applied and not normalise_text(applied[name]):
            raise invalid(name, "needs at least one letter or digit")
    facet_filter = _facet_filter(body)
    if not applied and facet_filter is None:
        raise invalid("body", "give at least one criterion: title, author, subject, min_year, max_year, "
                              "min_rating, language or facet_filters")
    if body.min_year is not None and body.max_year is not None and body.min_year > body.max_year:
        raise invalid("min_year", "must not be after max_year")
    order = body.order or ("asc" if body.sort == "title" else "desc")
    index = _live_index(live)
    result = index.advanced(Filters(**applied), body.sort, order, body.limit, body.offset,
                            with_matches=body.facets, facet_filter=facet_filter)
    items = _items(index, result, body, scored=body.sort == "relevance")
    return AdvancedSearchResponse(filters_applied=applied, sort=body.sort, order=order, total=result.total,
                                  count=len(items), offset=body.offset, limit=body.limit, items=items,
                                  facets=_facets(index, result, body))


async def _autocomplete(live: LiveIndex, prefix: str, limit: int, field: str,
                        source: str) -> AutocompleteResponse:
    normalised = normalise_text(prefix)
    if not normalised:
        raise invalid(field, "needs at least one letter or digit", source)
    if live.index is not None:
        index = live.index
        suggestions = index.autocomplete(normalised, limit)
        items = [_summary(index, p, 0.0) for p in suggestions.positions]
        return AutocompleteResponse(query=prefix, total=suggestions.total, count=len(items), offset=0,
                                    limit=limit, source="index", items=items)
    # The index is loading or off: the same answer from the title-prefix GSI.
    total, best = await live.suggestions_from_table(normalised)
    items = [_book_summary(book_summary(r), 0.0) for r in best[:limit]]
    return AutocompleteResponse(query=prefix, total=total, count=len(items), offset=0, limit=limit,
                                source="dynamodb", items=items)


@get("/search/autocomplete", summary="Titles starting with a prefix, most rated first",
     description="Any script; accents and case ignored. Answered from the index, or from the title-prefix "
                 "index of the books table while the index loads (`source`).")
async def autocomplete(live: NamedDependency[LiveIndex], q: Prefix,
                       limit: PrefixLimit = 10) -> AutocompleteResponse:
    return await _autocomplete(live, q, limit, "q", "query")


@get("/search/shard/{prefix:str}", summary="Title prefix autocomplete (compatibility path)",
     description="The same answer as `/search/autocomplete?q=`: any script, accents and case ignored.")
async def autocomplete_shard(live: NamedDependency[LiveIndex], prefix: FromPath[str],
                             limit: PrefixLimit = 10) -> AutocompleteResponse:
    if len(prefix) > MAX_PREFIX:
        raise invalid("prefix", f"at most {MAX_PREFIX} characters", "path")
    return await _autocomplete(live, prefix, limit, "prefix", "path")
