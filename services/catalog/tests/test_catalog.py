"""The one text normaliser, on real titles of the bundled goodbooks catalogue in several scripts."""

import pytest

from bookrec_catalog.catalog import (
    TITLE_KEY_BYTES,
    cover_url,
    has_word_character,
    normalise_text,
    search_terms,
    title_bucket,
    title_key,
)


@pytest.mark.parametrize(("title", "normalised"), [
    ("The Hunger Games (The Hunger Games, #1)", "the hunger games the hunger games 1"),
    ("Harry Potter and the Sorcerer's Stone", "harry potter and the sorcerer s stone"),
    ("Les Misérables", "les miserables"),
    ("Cien años de soledad", "cien anos de soledad"),
    ("Łódź", "lodz"),
    ("Ærø", "aero"),
    ("Die Straße", "die strasse"),
    ("Smilla's Sense of Snow: Frøken Smillas fornemmelse for sne",
     "smilla s sense of snow froken smillas fornemmelse for sne"),
    ("Ἰλιάς", "ιλιασ"),
    ("Ὀδύσσεια", "οδυσσεια"),
    ("Οἰδίπους Τύραννος", "οιδιπουσ τυραννοσ"),
    ("Анна Каренина", "анна каренина"),
    ("Мастер и Маргарита", "мастер и маргарита"),
    ("Ёлка", "елка"),
    ("الفيل الأزرق", "الفيل الازرق"),
    ("ノルウェイの森 [Noruwei no Mori]", "ノルウェイの森 noruwei no mori"),
    ("BLEACH―ブリーチ―\u30001", "bleach ブリーチ 1"),
    ("ﾉﾙｳｪｲの森", "ノルウェイの森"),  # half-width katakana are the same letters
    ("がっこう", "がっこう"),  # a dakuten is part of the letter, never dropped
    ("हिन्दी", "हिन्दी"),
    ("１９８４", "1984"),
    ("٢٠٢٠", "2020"),
    ("İstanbul", "istanbul"),
    ("ﬁnal", "final"),
    ("--- !!! ...", ""),
])
def test_normalise_text_keeps_every_script_and_folds_what_readers_leave_out(title, normalised):
    assert normalise_text(title) == normalised


def test_a_reader_without_accents_types_the_same_key():
    for accented, plain in [("Les Misérables", "les miserables"), ("Ἰλιάς", "Ιλιας"), ("Ærø", "aero"),
                            ("STRASSE", "Straße"), ("ëlka", "elka")]:
        assert normalise_text(accented) == normalise_text(plain)


def test_unspaced_scripts_are_found_by_any_part_of_two_or_more_characters():
    terms = search_terms("ノルウェイの森")
    assert {"ノル", "ウェ", "の森"} <= set(terms) and "森" in terms
    assert set(search_terms("ウェイの", query=True)) <= set(terms)
    assert search_terms("人生がときめく片づけの魔法", query=True)[:2] == ["人生", "生が"]
    assert set(search_terms("ภาษา", query=True)) <= set(search_terms("ภาษาไทย"))
    # a single character is a query of its own, found through the documents' single characters
    assert search_terms("森", query=True) == ["森"]


def test_spaced_words_around_unspaced_runs_stay_words():
    assert search_terms("NARUTO -ナルト- 巻ノ一", query=True) == ["naruto", "ナル", "ルト", "巻ノ", "ノ一"]
    assert search_terms("Анна Каренина") == ["анна", "каренина"]


def test_a_query_needs_one_letter_or_digit_of_any_script():
    assert all(has_word_character(q) for q in ["a", "7", "森", "ж", "α", "ก"])
    assert not any(has_word_character(q) for q in ["", "  ", "?!", "—", "\u0301"])


def test_title_key_and_bucket_work_for_every_script():
    assert title_key("Война и мир") == "воина и мир" and title_bucket(title_key("Война и мир")) == "в"
    assert title_bucket(title_key("ノルウェイの森")) == "ノ"
    assert title_bucket(title_key("...")) == "_"
    long_title = "森" * 400  # 1,200 bytes of UTF-8
    key = title_key(long_title)
    assert len(key.encode()) <= TITLE_KEY_BYTES and set(key) == {"森"}


def test_cover_url_is_the_source_s_image_else_open_library_s_large_cover_of_the_cover_id():
    assert cover_url(8231856) == "https://covers.openlibrary.org/b/id/8231856-L.jpg"
    goodbooks = "https://images.gr-assets.com/books/1447303603m/2767052.jpg"
    assert cover_url(8231856, goodbooks) == goodbooks and cover_url(None, goodbooks) == goodbooks
    for no_cover in (None, 0, -1, True, "8231856", 12.5):
        assert cover_url(no_cover) is None and cover_url(no_cover, "") is None
