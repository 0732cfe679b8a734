"""The search contract."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Limit = Annotated[int, msgspec.Meta(ge=1, le=100, description="1..100")]
Offset = Annotated[int, msgspec.Meta(ge=0, le=10_000, description="0..10,000")]
Year = Annotated[int, msgspec.Meta(ge=-5000, le=3000)]


Language = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}$")]
MAX_FACET_VALUES = 20
FacetText = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]


class FacetFilters(msgspec.Struct, forbid_unknown_fields=True):
    """Facet values a book must have: any of the values given for a facet, and every facet given."""

    authors: Annotated[list[FacetText], msgspec.Meta(max_length=MAX_FACET_VALUES)] = []
    subjects: Annotated[list[FacetText], msgspec.Meta(max_length=MAX_FACET_VALUES)] = []
    decades: Annotated[list[Year], msgspec.Meta(max_length=MAX_FACET_VALUES,
                                                description="decades of first publication, as 1990")] = []
    languages: Annotated[list[Language], msgspec.Meta(max_length=MAX_FACET_VALUES)] = []


class Options(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What full-text and advanced search can add on request."""

    facets: Annotated[bool, msgspec.Meta(
        description="count authors, subjects, decade and language over all matches (`facets`)")] = False
    highlight: Annotated[bool, msgspec.Meta(
        description="give each hit the character ranges of its matched words (`highlights`)")] = False
    facet_filters: FacetFilters | None = None


class SearchRequest(Options, forbid_unknown_fields=True):
    query: Annotated[str, msgspec.Meta(max_length=500)]
    limit: Limit = 20
    offset: Offset = 0


class AdvancedSearchRequest(Options, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    author: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    subject: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    min_year: Year | None = None
    max_year: Year | None = None
    min_rating: Annotated[float, msgspec.Meta(ge=0, le=5, description="0..5")] | None = None
    language: Language | None = None
    sort: Literal["relevance", "rating", "year", "title"] = "relevance"
    order: Literal["asc", "desc"] | None = None
    limit: Limit = 20
    offset: Offset = 0


Range = tuple[int, int]


class Highlights(msgspec.Struct):
    """[start, end) offsets, in Unicode characters, of the matched words in the hit's title and authors."""

    title: list[Range]
    authors: list[list[Range]]  # one list per author, in the order of `authors`


class FacetValue(msgspec.Struct):
    value: str | int  # an author, subject or language code; a decade as its first year (1990)
    count: int


class Facets(msgspec.Struct):
    """Per facet, the most frequent values over all matching books (not only this page), most first."""

    authors: list[FacetValue]
    subjects: list[FacetValue]
    decade: list[FacetValue]
    language: list[FacetValue]
    exhaustive: Annotated[bool, msgspec.Meta(
        description="true: exact counts; false (past 20,000 matches): estimates from an even sample of "
                    "20,000 of them, scaled to all matches")] = True


class Series(msgspec.Struct):
    name: str
    position: Annotated[float | None, msgspec.Meta(
        description="the book's number in the series (1, 2, 2.5), null when the source gives none")] = None


class BookSummary(msgspec.Struct, omit_defaults=True):  # `highlights` only when asked for
    book_id: str
    title: str
    authors: list[str]
    first_publish_year: int | None
    avg_rating: float
    rating_count: int
    cover_id: int | None
    score: float
    series: Annotated[Series | None, msgspec.Meta(
        description="the series the book belongs to and its number in it; null when none")]
    highlights: Highlights | None = None  # on request (`highlight`)


class Correction(msgspec.Struct):
    """A query word found only through typo correction, and the words it was taken for."""

    word: str  # as normalised (lower case, accents folded)
    corrected_to: list[str]


class SearchResponse(msgspec.Struct):
    query: str
    total: int
    count: int
    offset: int
    limit: int
    matched: Literal["all_words", "any_word"]
    items: list[BookSummary]
    corrections: list[Correction] = []
    facets: Facets | None = None  # on request
    ignored_words: Annotated[list[str], msgspec.Meta(
        description="query words (as normalised) that took no part: past the first 16, or, in an any-word "
                    "answer, the commonest past a million books' worth")] = []


class AdvancedSearchResponse(msgspec.Struct):
    filters_applied: dict[str, str | float]  # one JSON type per value: "number" covers years too
    sort: str
    order: str
    total: int
    count: int
    offset: int
    limit: int
    items: list[BookSummary]
    facets: Facets | None = None  # on request


class AutocompleteResponse(msgspec.Struct):
    """The search shape (clients of the replaced system read `count` and `items`), plus where it came from."""

    query: str
    total: int
    count: int
    offset: int
    limit: int
    source: Literal["index", "dynamodb"]
    items: list[BookSummary]
