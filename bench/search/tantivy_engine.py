"""The search features of bookrec_search.index rebuilt on tantivy, to compare the two engines.

Text goes through our own normaliser (`search_terms`: NFKC, case folding, diacritics folded, unspaced
scripts as bigrams) and is indexed pre-tokenised, terms joined by spaces under tantivy's whitespace
tokenizer, so both engines see the same terms.

Scoring
-------
- Fields title, original title (3), authors (2) and subjects (1): tantivy's BM25 per field, summed
  (of title and original title, which often share words, only the better).
- Every query word must match (in any field); when no book has them all, any word matches.
- A query word matches itself, its corrections and, for the last word, the words it begins. Tantivy's
  fuzzy and prefix queries score a flat 1.0 x boost, so that a corrected word weighs what an exact
  one does (rarer words more), corrections are looked up instead (a fuzzy query on an index of the
  vocabulary, one document per term: tantivy's Levenshtein automaton) and searched as BM25 term
  queries, boosted down: one edit x 0.5, two edits x 0.3, a completed prefix x 0.3. Per word the
  best variant counts (a disjunction max), so exact matches rank above corrected ones.
- Corrections follow Meilisearch: none under 5 characters, one edit from 5, two from 9, a
  transposition one edit; numbers and unspaced-script bigrams are never corrected.
- A popularity prior multiplies the score: 1 + 0.15 * ln(1 + rating_count) * bayes_avg / 5 (as
  bookrec_search.index), through tantivy's `weight_by_field` (which applies log2(2 + v): v is chosen
  so that log2(2 + v) is that factor).
- A query equal to the normalised title, the title without its series note, or the original title
  adds EXACT_TITLE_BONUS.
- A query that is an ISBN-13 or ISBN-10 (hyphens and spaces allowed) finds its book first.

Facets (authors, subjects, decade, language) are counted by tantivy terms aggregations over the
matching books.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import tantivy

from bookrec_catalog.catalog import normalise_text, search_terms

TEXT_FIELDS = {"title": 3.0, "original": 3.0, "authors": 2.0, "subjects": 1.0}
ONE_EDIT, TWO_EDITS, PREFIX = 0.5, 0.3, 0.3
EXACT_TITLE_BONUS = 20.0
PRIOR_STRENGTH, PRIOR_RATINGS = 0.15, 10.0
MAX_CORRECTIONS, MAX_COMPLETIONS = 12, 24
FACETS = {"authors": "author_facet", "subjects": "subject_facet", "decade": "decade", "language": "language"}
SERIES_NOTE = re.compile(r"\s*\([^()]*#\s*[\d.\-–]+\)\s*$")
ISBN = re.compile(r"97[89]\d{10}|\d{9}[\dX]")


def isbn10_to_13(isbn10: str) -> str:
    body = "978" + isbn10[:9]
    return body + str((10 - sum((3 if i % 2 else 1) * int(d) for i, d in enumerate(body)) % 10) % 10)


def isbn13_to_10(isbn13: str) -> str | None:
    if not isbn13.startswith("978"):
        return None
    check = (11 - sum((10 - i) * int(d) for i, d in enumerate(isbn13[3:12])) % 11) % 11
    return isbn13[3:12] + ("X" if check == 10 else str(check))


def typos_allowed(word: str) -> int:
    if word.isdigit() or len(word) < 5:
        return 0
    return 1 if len(word) < 9 else 2


def _prior_weight(count: int, total: int, mean: float) -> float:
    """v with log2(2 + v) = 1 + PRIOR_STRENGTH * prior: tantivy's weight_by_field then applies the prior."""
    bayes = (total + PRIOR_RATINGS * mean) / (count + PRIOR_RATINGS)
    factor = 1 + PRIOR_STRENGTH * math.log1p(count) * bayes / 5
    return 2 ** factor - 2


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("book_id", stored=True, tokenizer_name="raw", index_option="basic")
    for name in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name="whitespace", index_option="freq")
    builder.add_text_field("exact", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("isbn", tokenizer_name="raw", index_option="basic")
    for name in ("author_facet", "subject_facet", "language"):
        builder.add_text_field(name, fast=True, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("decade", fast=True, indexed=True)
    builder.add_float_field("prior", fast=True)
    return builder.build()


def _directory(path: str | None, name: str) -> str | None:
    if path is None:
        return None
    os.makedirs(os.path.join(path, name), exist_ok=True)
    return os.path.join(path, name)


def _vocabulary_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("term", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("df", fast=True)
    return builder.build()


class TantivyEngine:
    def __init__(self, index: tantivy.Index, vocabulary: tantivy.Index) -> None:
        self.index, self.schema = index, index.schema
        self.searcher = index.searcher()
        self.vocabulary, self.vocabulary_schema = vocabulary.searcher(), vocabulary.schema

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], heap: int = 64_000_000,
                     mean: float | None = None, path: str | None = None) -> TantivyEngine:
        """Index `records`. Given `mean` (the catalogue's mean rating: sum of rating sums over sum of rating
        counts) they stream in one by one instead of being held in a list first. Given `path` (an empty
        directory) the index lives there, books in `path`/books and the vocabulary in `path`/vocabulary;
        without it, in memory."""
        if mean is None:
            records = list(records)
            mean = (sum(int(r.get("rating_sum") or 0) for r in records)
                    / max(1, sum(int(r.get("rating_count") or 0) for r in records)))
        index = tantivy.Index(_schema(), path=_directory(path, "books"))
        writer = index.writer(heap, 1)
        frequency: Counter[str] = Counter()
        for record in records:
            count, total = int(record.get("rating_count") or 0), int(record.get("rating_sum") or 0)
            document, terms = cls._document(record)
            document.add_float("prior", _prior_weight(count, total, mean))
            writer.add_document(document)
            frequency.update(terms)
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        vocabulary = tantivy.Index(_vocabulary_schema(), path=_directory(path, "vocabulary"))
        writer = vocabulary.writer(heap // 4, 1)
        for term, df in frequency.items():
            if typos_allowed(term) or len(term) >= 4:  # a 4-letter word is one edit from a 5-letter query
                entry = tantivy.Document(term=term)
                entry.add_unsigned("df", df)
                writer.add_document(entry)
        writer.commit()
        writer.wait_merging_threads()
        vocabulary.reload()
        return cls(index, vocabulary)

    @staticmethod
    def _document(record: Mapping[str, Any]) -> tuple[tantivy.Document, set[str]]:
        title, original = record.get("title") or "", record.get("original_title") or ""
        names = [a["name"] for a in record.get("authors") or [] if a.get("name")]
        subjects = [s for s in record.get("subjects") or [] if isinstance(s, str)]
        texts = {"title": [title, record.get("subtitle") or ""], "original": [original],
                 "authors": names, "subjects": subjects}
        document = tantivy.Document(book_id=record["book_id"])
        terms: set[str] = set()
        for field, values in texts.items():
            tokens = [t for value in values for t in search_terms(value)]
            document.add_text(field, " ".join(tokens))
            terms.update(tokens)
        for whole in {normalise_text(t) for t in (title, SERIES_NOTE.sub("", title), original)} - {""}:
            document.add_text("exact", whole)
        for isbn in record.get("isbn_13") or []:
            document.add_text("isbn", isbn)
            if isbn13_to_10(isbn):
                document.add_text("isbn", isbn13_to_10(isbn))
        for name in names:
            document.add_text("author_facet", name)
        for subject in subjects:
            document.add_text("subject_facet", subject)
        document.add_text("language", record.get("language") or "")
        if isinstance(record.get("first_publish_year"), int):
            document.add_integer("decade", record["first_publish_year"] // 10 * 10)
        return document, terms

    # ---- queries --------------------------------------------------------------------------------------
    def _term(self, field: str, term: str, boost: float) -> tantivy.Query:
        return tantivy.Query.boost_query(tantivy.Query.term_query(self.schema, field, term, "freq"), boost)

    def _corrections(self, word: str) -> list[tuple[str, float]]:
        found: dict[str, float] = {}
        for distance, penalty in ((1, ONE_EDIT), (2, TWO_EDITS))[:typos_allowed(word)]:
            fuzzy = tantivy.Query.fuzzy_term_query(self.vocabulary_schema, "term", word, distance, True)
            hits = self.vocabulary.search(fuzzy, MAX_CORRECTIONS, count=False, order_by_field="df").hits
            for _, address in hits:
                found.setdefault(self.vocabulary.doc(address).get_first("term"), penalty)
        found.pop(word, None)
        return list(found.items())

    def _completions(self, word: str) -> list[tuple[str, float]]:
        found: dict[str, int] = Counter()
        for field in TEXT_FIELDS:
            for term, df in self.searcher.terms_with_prefix(field, word, limit=MAX_COMPLETIONS):
                found[term] += df
        found.pop(word, None)
        return [(term, PREFIX) for term, _ in found.most_common(MAX_COMPLETIONS)]

    def _word(self, word: str, last: bool) -> tantivy.Query:
        variants = [(word, 1.0), *self._corrections(word), *(self._completions(word) if last else [])]
        return tantivy.Query.disjunction_max_query([self._everywhere(t, penalty) for t, penalty in variants])

    def _everywhere(self, term: str, penalty: float) -> tantivy.Query:
        """The term in any field; a title and its original title often share words: the better one counts."""
        title = tantivy.Query.disjunction_max_query([self._term(f, term, TEXT_FIELDS[f] * penalty)
                                                     for f in ("title", "original")])
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, title),
             *((tantivy.Occur.Should, self._term(f, term, TEXT_FIELDS[f] * penalty))
               for f in ("authors", "subjects"))])

    def text_query(self, query: str) -> tuple[tantivy.Query, tantivy.Query]:
        """(every word required, any word) queries for the text of `query`, with the exact title bonus."""
        words = list(dict.fromkeys(search_terms(query, query=True)))
        last_open = bool(query) and not query[-1].isspace()
        clauses = [self._word(w, last_open and i == len(words) - 1) for i, w in enumerate(words)]
        exact = tantivy.Query.const_score_query(
            tantivy.Query.term_query(self.schema, "exact", normalise_text(query)), EXACT_TITLE_BONUS)
        every = tantivy.Query.boolean_query([*((tantivy.Occur.Must, c) for c in clauses),
                                             (tantivy.Occur.Should, exact)])
        some = tantivy.Query.boolean_query([*((tantivy.Occur.Should, c) for c in clauses),
                                            (tantivy.Occur.Should, exact)])
        return every, some

    def _isbn(self, query: str) -> list[str]:
        compact = re.sub(r"[\s\-]", "", query).upper()
        if not ISBN.fullmatch(compact):
            return []
        lookup = tantivy.Query.term_query(self.schema, "isbn", compact)
        hits = self.searcher.search(lookup, 10, count=False).hits
        return [self.searcher.doc(address).get_first("book_id") for _, address in hits]

    def search(self, query: str, limit: int = 20, offset: int = 0) -> list[str]:
        """Book ids of the best `limit` hits after the first `offset`, best first."""
        found = self._isbn(query)
        if found or not search_terms(query, query=True):
            return found[offset:offset + limit]
        every, some = self.text_query(query)
        hits = self.searcher.search(every, limit, count=False, offset=offset, weight_by_field="prior").hits
        if not hits and (offset == 0 or not self.searcher.search(every, 1, count=False).hits):
            hits = self.searcher.search(some, limit, count=False, offset=offset, weight_by_field="prior").hits
        return [self.searcher.doc(address).get_first("book_id") for _, address in hits]

    def facets(self, query: str, size: int = 10) -> dict[str, list[tuple[Any, int]]]:
        """Counts of the most frequent authors, subjects, decades and languages among the matching books."""
        every, some = self.text_query(query)
        matching = every if self.searcher.search(every, 1).count else some
        spec = {name: {"terms": {"field": field, "size": size}} for name, field in FACETS.items()}
        result = self.searcher.aggregate(matching, spec)
        return {name: [(bucket["key"], bucket["doc_count"]) for bucket in result[name]["buckets"]]
                for name in FACETS}
