"""Series notes of goodbooks titles, in every shape the bundled catalogue has, split off the title."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookrec_catalog.catalog import Series, parse_series_note, split_series


@pytest.mark.parametrize(("title", "bare", "series"), [
    ("The Hunger Games (The Hunger Games, #1)", "The Hunger Games", Series("The Hunger Games", 1)),
    ("Catching Fire (The Hunger Games, #2)", "Catching Fire", Series("The Hunger Games", 2)),
    ("Harry Potter and the Half-Blood Prince (Harry Potter, #6)", "Harry Potter and the Half-Blood Prince",
     Series("Harry Potter", 6)),
    ("The Fellowship of the Ring (The Lord of the Rings, #1)", "The Fellowship of the Ring",
     Series("The Lord of the Rings", 1)),
    ("Tales of Beedle (Hogwarts Library, #0.5)", "Tales of Beedle", Series("Hogwarts Library", 0.5)),
    ("Midnight Sun (Twilight, #1.5)", "Midnight Sun", Series("Twilight", 1.5)),
    ("Judy Moody (Judy Moody, # 1)", "Judy Moody", Series("Judy Moody", 1)),
    ("Beyond Exile (Day by Day Armageddon,# 2)", "Beyond Exile", Series("Day by Day Armageddon", 2)),
    ("Carpe Jugulum (Discworld #23; Witches #6)", "Carpe Jugulum", Series("Discworld", 23)),
    # several series: the first
    ("The Light Fantastic (Discworld, #2; Rincewind #2)", "The Light Fantastic", Series("Discworld", 2)),
    ("Night Play (Dark-Hunter #5, Were-Hunter #1)", "Night Play", Series("Dark-Hunter", 5)),
    ("Raising Steam (Discworld, #40, Moist von Lipwig #3 )", "Raising Steam", Series("Discworld", 40)),
    ("Deep Kiss of Winter (Includes: Immortals After Dark, #8; Alien Huntress, #3.5)", "Deep Kiss of Winter",
     Series("Immortals After Dark", 8)),
    # a part of one book is still that book's number
    ("Harry Potter and the Order of the Phoenix (Harry Potter, #5, Part 1)",
     "Harry Potter and the Order of the Phoenix", Series("Harry Potter", 5)),
    ("A Storm of Swords: Blood and Gold (A Song of Ice and Fire, #3: Part 2 of 2)",
     "A Storm of Swords: Blood and Gold", Series("A Song of Ice and Fire", 3)),
    ("From the Two Rivers (Wheel of time, #1-1)", "From the Two Rivers", Series("Wheel of time", 1)),
    # a series name with parentheses of its own
    ("Ranma ½, Vol. 1 (Ranma ½ (US 2nd), #1)", "Ranma ½, Vol. 1", Series("Ranma ½ (US 2nd)", 1)),
    # no single number: a range or several books, the series without a position
    ("Nightfall (Nightfall, #1-2)", "Nightfall", Series("Nightfall")),
    ("The Oedipus Cycle (The Theban Plays, #1–3)", "The Oedipus Cycle", Series("The Theban Plays")),
    ("Four: A Divergent Story Collection (Divergent, #0.1 - 0.4)", "Four: A Divergent Story Collection",
     Series("Divergent")),
    ("The Twilight Saga Complete Collection  (Twilight, #1-4 + 3.5)", "The Twilight Saga Complete Collection",
     Series("Twilight")),
    ("A Touch of Dead (Sookie Stackhouse, #4.1, #4.3, #5.1, #7.1, #8.1)", "A Touch of Dead",
     Series("Sookie Stackhouse")),
    ("The Selection Stories (The Selection, #0.5, 2.5)", "The Selection Stories", Series("The Selection")),
])
def test_a_closing_series_note_becomes_the_series(title, bare, series):
    assert split_series(title) == (bare, series)


@pytest.mark.parametrize("title", [
    "Bossypants",
    "The Complete Stories (Complete Collection)",  # a parenthetical without "#" and a number
    "Sleeping Beauty (Disney Princess, 5)",
    "Is Everyone Hanging Out Without Me? (And Other Concerns)",
    "Saga #1",  # a "#" outside a closing parenthetical
    "Nancy Drew: #1-64",
    "#GIRLBOSS",
    "(Harry Potter, #1)",  # nothing but the note: the title stays whole
    "Notes (#1)",  # no series name
    "Notes (Volume #one)",
    "Unbalanced (Series, #1",
])
def test_a_title_without_a_series_note_stays_as_it_is(title):
    assert split_series(title) == (title, None)


def test_a_series_is_stored_with_its_position_only_when_it_has_one():
    assert Series("The Hunger Games", 2).as_record() == {"name": "The Hunger Games", "position": 2}
    assert Series("Discworld", 1.5).as_record() == {"name": "Discworld", "position": 1.5}
    assert Series("Nightfall").as_record() == {"name": "Nightfall"}


def test_a_note_alone_parses_as_the_titles_would():
    assert parse_series_note("The Hunger Games, #2") == Series("The Hunger Games", 2)
    assert parse_series_note("Discworld") is None


_WORDS = st.text(alphabet=st.characters(whitelist_categories=("L", "Nd", "Zs")), max_size=30)


@given(_WORDS, _WORDS, st.integers(min_value=0, max_value=10_000), st.sampled_from([", #", " #", ",# "]))
def test_any_title_and_series_name_come_apart_whole(title, name, number, separator):
    bare, series = split_series(f"{title} ({name}{separator}{number})")
    if title.strip() and name.strip():
        assert (bare, series) == (" ".join(title.split()), Series(" ".join(name.split()), number))
    else:  # nothing but a note, or a note without a name: the title stays whole
        assert series is None
