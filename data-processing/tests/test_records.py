"""Source rows -> records: pure functions, on the real samples and on crafted rows."""

from __future__ import annotations

import csv
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookrec_catalog.catalog import cut_utf8, normalise_text, title_bucket
from bookrec_etl.records import (
    Rejected,
    as_isbn13,
    author,
    clean_subjects,
    distribution_for,
    from_goodbooks_row,
    from_jsonl_row,
    goodbooks_isbn13,
    isbn10_is_valid,
    isbn13_is_valid,
    language_code,
    parse_year,
    rating,
    timestamp,
)


@pytest.mark.parametrize("raw, year", [("1955", 1955), ("November 25, 1989", 1989), ("", None), (None, None),
                                       ("c. 1850?", 1850), (1999, 1999), ("between 1200 and 1210", 1210),
                                       ("1999-03-02", 1999), ("unknown", None), (True, None),
                                       ("[18--?]", None), ("MCMLX", None), ("20th century", None),
                                       (99999, None)])
def test_messy_years_parse(raw, year):
    assert parse_year(raw) == year


def test_every_year_of_the_real_philosophy_sample_parses_to_an_int_or_nothing(samples, open_sample):
    with open_sample(samples["philosophy"]) as handle:
        rows = [json.loads(line) for line in handle]
    raw_years = {row["first_publish_year"] for row in rows}
    assert {"", "November 25, 1989"} <= raw_years  # the mess is really there
    for row in rows:
        year = from_jsonl_row(row).get("first_publish_year")
        raw = row["first_publish_year"]
        if raw == "":
            assert year is None
        else:
            assert isinstance(year, int) and str(year) in raw, raw


def test_the_philosophy_row_becomes_a_complete_book(samples, open_sample):
    with open_sample(samples["philosophy"]) as handle:
        rows = {json.loads(line)["book_id"]: json.loads(line) for line in handle}
    zen = from_jsonl_row(rows["/works/OL827357W"])
    assert zen["book_id"] == "OL827357W" and zen["title"] == "Zen and the Art of Motorcycle Maintenance"
    assert zen["authors"] == [{"name": "Robert M. Pirsig"}] and zen["cover_id"] == 10673266
    assert zen["title_norm"] == normalise_text(zen["title"])
    assert zen["title_bucket"] == title_bucket(zen["title_norm"])
    assert "language" not in zen  # "" in the source: unknown, not "en"
    # A bare ratings_count has no sum behind it, so no aggregate is invented.
    assert zen["rating_count"] == 0 and zen["ratings_distribution"] == {s: 0 for s in "12345"}


def test_subjects_are_trimmed_and_deduplicated():
    assert clean_subjects([" Ethics ", "ethics", "", "Logic", None, "Logic  and  Truth", "a\tb"]) == \
        ["Ethics", "Logic", "Logic and Truth", "a b"]
    assert len(clean_subjects([f"s{i}" for i in range(500)])) == 50


def test_languages_become_iso_639_2_and_undetermined_is_unknown():
    codes = ("eng", "en-US", "en", "fre", "/languages/spa", {"key": "/languages/ger"}, "", None, "e", "und")
    assert [language_code(c) for c in codes] == \
        ["eng", "eng", "eng", "fre", "spa", "ger", None, None, None, None]


def test_isbn_spellings_become_verified_isbn13s():
    assert as_isbn13("978-1-935928-32-4") == "9781935928324"
    assert as_isbn13("0-670-03482-7") == "9780670034826"
    assert as_isbn13("089471984X") == "9780894719844"
    assert as_isbn13("9781935928325") is None  # wrong check digit
    assert as_isbn13("0670034828") is None


def test_goodbooks_isbn13s_are_derived_and_verified_on_every_real_row(samples, open_sample):
    # The Hunger Games: isbn 439023483 (leading zero dropped), isbn13 9.78043902348e+12 (check digit lost).
    assert goodbooks_isbn13("439023483", "9.78043902348e+12") == "9780439023481"
    with open_sample(samples["goodbooks_books"]) as handle:
        rows = list(csv.DictReader(handle))
    derived = {row["book_id"]: goodbooks_isbn13(row["isbn"], row["isbn13"]) for row in rows}
    present = [isbn for isbn in derived.values() if isbn]
    assert len(present) > 9000
    assert all(len(isbn) == 13 and isbn.isdigit() and isbn13_is_valid(isbn) for isbn in present)
    # The rounding rule is the source's: an ISBN-10's ISBN-13 rounds to the float column in >99% of the
    # rows having both (the rest name two different editions); float-only derivations round to it too.
    both = [row for row in rows if row["isbn"] and isbn10_is_valid(row["isbn"].zfill(10)) and row["isbn13"]]
    rounds_back = [float(f"{int(str(derived[row['book_id']])):.12g}") == float(row["isbn13"]) for row in both]
    assert len(both) > 9000 and sum(rounds_back) / len(both) > 0.99
    float_only = [row for row in rows if not (row["isbn"] and isbn10_is_valid(row["isbn"].zfill(10)))
                  and derived[row["book_id"]]]
    assert float_only and all(float(f"{int(str(derived[row['book_id']])):.12g}") == float(row["isbn13"])
                              for row in float_only)


@pytest.mark.parametrize("isbn13_float, expected", [
    ("9.78067978327e+12", "9780679783268"),  # check digit 8: the twelfth digit was rounded up
    ("9.7804390235e+12", None),  # 978043902350 + 0 and 978043902349 + 8 both round to it: unknowable
    ("9.78043902348e+12", "9780439023481"),  # 978043902347 + 4 would not round up: only ...3481 fits
    ("", None), ("nan", None), ("1.23e+5", None),
])
def test_without_an_isbn10_the_rounded_float_decides_only_when_it_can(isbn13_float, expected):
    assert goodbooks_isbn13("", isbn13_float) == expected


def test_replaced_system_format_is_understood_with_its_aggregate_kept_exactly():
    row = {"book_id": "OL45883W", "title": "The Republic ", "title_prefix": "th",
           "title_lower": "the republic",
           "authors": [{"author_id": "OL12A", "author_name": "Plato"}], "isbn_13": "9780140455113",
           "first_publish_year": None, "subjects": ["Philosophy"], "language": "en", "description": "x",
           "cover_id": 42, "avg_rating": 4.1, "rating_count": 10}
    book = from_jsonl_row(row)
    assert book["title"] == "The Republic" and book["authors"] == [{"author_id": "OL12A", "name": "Plato"}]
    assert book["isbn_13"] == ["9780140455113"] and book["language"] == "eng" and book["cover_id"] == 42
    assert (book["rating_count"], book["rating_sum"], book["avg_rating"]) == (10, 41, 4.1)
    assert "title_prefix" not in book and "title_lower" not in book


@given(st.integers(min_value=1, max_value=10_000), st.floats(min_value=1.0, max_value=5.0))
def test_a_distribution_from_average_and_count_keeps_both(count, average):
    distribution = distribution_for(average, count)
    assert sum(distribution.values()) == count
    assert sum(int(star) * n for star, n in distribution.items()) == round(average * count)
    assert all(n >= 0 for n in distribution.values())


@pytest.mark.parametrize("row, reason", [
    ({"book_id": "OL1W"}, "missing title"),
    ({"book_id": "OL1W", "title": "   "}, "missing title"),
    ({"title": "No key"}, "missing or malformed work key"),
    ({"book_id": "/authors/OL1A", "title": "An author key"}, "missing or malformed work key"),
    ([1, 2], "not a JSON object"),
])
def test_rows_that_cannot_be_books_say_why(row, reason):
    with pytest.raises(Rejected, match=reason):
        from_jsonl_row(row)


def test_goodbooks_rows_take_their_aggregate_from_the_imported_ratings_not_the_csv():
    row = {"book_id": "1", "isbn": "439023483", "isbn13": "9.78043902348e+12", "authors": "Suzanne Collins",
           "original_publication_year": "2008.0", "title": "The Hunger Games (The Hunger Games, #1)",
           "language_code": "eng", "ratings_count": "4780653", "ratings_5": "2706317",
           "image_url": "https://s.gr-assets.com/assets/nophoto/book/111x148-bcc042a9c91a29c1d6.png"}
    book = from_goodbooks_row(row, ["fiction", "ya", "Fiction"], {"5": 2, "4": 1})
    assert book["book_id"] == "GB1" and book["first_publish_year"] == 2008
    assert book["subjects"] == ["fiction", "ya"]
    assert (book["rating_count"], book["rating_sum"]) == (3, 14) and "cover_url" not in book


@pytest.mark.parametrize(("title", "original", "kept"), [
    ("War and Peace", "Война и миръ", "Война и миръ"),
    ("Norwegian Wood", "ノルウェイの森 [Noruwei no Mori]", "ノルウェイの森 [Noruwei no Mori]"),
    ("Les Misérables", "Les Miserables", None),  # the same words: nothing more to search
    ("The Hunger Games", "", None),
    ("The Iliad", "  Ἰλιάς \n", "Ἰλιάς"),
])
def test_goodbooks_keep_the_original_title_when_it_says_more(title, original, kept):
    row = {"book_id": "7", "title": title, "original_title": original, "authors": "Someone"}
    assert from_goodbooks_row(row, [], None).get("original_title") == kept


@pytest.mark.parametrize("stars", [0, 6, "4.5", "x", True, None])
def test_ratings_outside_one_to_five_are_rejected(stars):
    with pytest.raises(Rejected, match=r"1\.\.5"):
        rating("GB1", "gb-1", stars, "2017-09-01T00:00:00.000000Z")


def test_open_library_datetimes_become_utc_with_z():
    assert timestamp({"type": "/type/datetime", "value": "2013-03-28T07:50:48.835814"}) == \
        "2013-03-28T07:50:48.835814Z"
    assert timestamp("2008-04-01T03:28:50") == "2008-04-01T03:28:50.000000Z"
    assert timestamp("2020-01-01T01:00:00+01:00") == "2020-01-01T00:00:00.000000Z"
    assert timestamp("yesterday") is None


@given(st.text(), st.integers(min_value=0, max_value=40))
def test_keys_are_cut_by_utf8_bytes_on_a_character_boundary(text, limit):
    cut = cut_utf8(text, limit)
    assert len(cut.encode("utf-8")) <= limit and text.startswith(cut)
    if cut != text:  # as much as fits: one more character would not
        assert len((cut + text[len(cut)]).encode("utf-8")) > limit


def test_cut_utf8_never_splits_a_character():
    assert cut_utf8("ab€", 4) == "ab" and cut_utf8("ab€", 5) == "ab€"
    assert cut_utf8("日本語", 7) == "日本" and cut_utf8("日本語", 2) == ""


def test_an_author_id_is_never_a_name():
    assert author(None, "OL3399168A") == {"author_id": "OL3399168A", "name": ""}
    assert author("OL1A", "/authors/OL2A") == {"author_id": "OL1A", "name": ""}
    assert author("OL1A", "  Jane   Doe ") == {"author_id": "OL1A", "name": "Jane Doe"}
    assert author(None, "OLD MAN") == {"name": "OLD MAN"} and author(None, "OL0A") == {"name": "OL0A"}


def test_rating_timestamps_are_one_sortable_format_or_rejected():
    stored = rating("OL1W", "u", 5, "2020-01-01T00:00:00Z", "2021-01-01T01:00:00+01:00")
    assert (stored["created_at"], stored["updated_at"]) == ("2020-01-01T00:00:00.000000Z",
                                                            "2021-01-01T00:00:00.000000Z")
    with pytest.raises(Rejected, match="created_at"):
        rating("OL1W", "u", 5, "yesterday")
    with pytest.raises(Rejected, match="updated_at"):
        rating("OL1W", "u", 5, "2020-01-01T00:00:00Z", "x" * 2000)


@pytest.mark.parametrize("book_id, user_id", [("OL1W\n", "alice"), ("OL1W", "alice\n"), ("GB1 ", "gb-1")])
def test_ids_are_the_services_ids_whole_so_the_etl_writes_none_they_refuse(book_id, user_id):
    with pytest.raises(Rejected):
        rating(book_id, user_id, 5, "2024-01-01T00:00:00Z")
