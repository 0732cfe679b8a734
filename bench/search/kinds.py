"""The kinds of query the search benchmarks time, the same texts for either engine.

Ordinary kinds (common, rare and several words, exact titles, the any-word fallback, deep offsets),
what readers type besides clean words (words with one or two edits, a half-typed last word, words in
Arabic, Cyrillic, Greek and CJK scripts, two characters of a CJK title), and the worst a single request
can ask within the API's bounds (500 characters): one 500-character word, 50 words (misspelt, common,
the last one half typed), 500 CJK characters, long digit runs; and at the index's caps, 16 words each
completed or corrected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.search.measure import measure
from bench.search.synthetic import CJK, NON_LATIN, vocabularies
from bookrec_catalog.catalog import normalise_text

MAX_QUERY = 500  # characters: what the API accepts
WORD_CAP = 16  # words a query is matched by (bookrec_search.matching.MAX_QUERY_WORDS); later ones ignored
COMMON = ["the", "of", "love", "life", "history", "world", "new", "war"]
MULTI = ["the history of", "love and war", "philosophy of mind", "a tale of two", "the art of war",
         "harry potter", "the lord of the rings", "critique of pure reason"]


def title_positions(n: int) -> tuple[np.random.Generator, np.ndarray]:
    """The books whose titles the queries use (the generator goes on to make the typos)."""
    rng = np.random.default_rng(1)
    return rng, rng.integers(n, size=300)


def full_text(search: Callable[..., Any], rare: list[str], titles: list[str],
              clock: Callable[[], float] = time.thread_time) -> None:
    common = COMMON
    measure("full text: common word", lambda i: search(common[i % len(common)]), 400, clock)
    measure("full text: rare word", lambda i: search(rare[i % len(rare)]), 400, clock)
    measure("full text: multi-word", lambda i: search(MULTI[i % len(MULTI)]), 400, clock)
    measure("full text: exact title of a book", lambda i: search(titles[i % len(titles)]), 400, clock)
    measure("full text: any-word fallback", lambda i: search(common[i % len(common)] + " qqxzv"), 200, clock)
    measure("full text: deep offset (9,980)", lambda i: search(common[i % len(common)], 20, 9_980), 200,
            clock)


def worst_texts(words: list[str], titles: list[str], rng: np.random.Generator) -> dict[str, list[str]]:
    """Per kind, query texts built to cost the most within the API's 500 characters (a few of each, so
    no kind is one lucky query). `words`: the index's terms, most used first."""
    letters = "abcdefghijklmnopqrstuvwxyz"

    def within(parts: list[str]) -> str:
        text = ""
        for part in parts:
            if len(text) + len(part) + 1 > MAX_QUERY:
                break
            text = f"{text} {part}" if text else part
        return text

    def half_typed(words: list[str]) -> str:
        return " ".join([*words[:-1], words[-1][:max(2, len(words[-1]) // 2)]])

    def random_word(length: int) -> str:
        return "".join(letters[int(j)] for j in rng.integers(26, size=length))

    latin = [w for w in words if w.isascii() and w.isalpha()]
    nine = [w for w in latin if len(w) >= 9] or latin
    title_words = [w for t in titles for w in t.lower().split() if w.isalpha() and w.isascii()]
    cjk = [c for c in "".join(sorted({w for w in words if CJK.fullmatch(w)})) if CJK.fullmatch(c)]
    texts = {
        "one 500-character word (abcdefghij x 50)": ["abcdefghij" * 50],
        "one 500-character word, random letters": [random_word(MAX_QUERY) for _ in range(8)],
        "one 60-character word": [random_word(60) for _ in range(8)],
        "50 words of 9 letters, each misspelt": [
            within([one_edit(nine[int(j)], rng) for j in rng.integers(len(nine), size=60)])
            for _ in range(8)],
        "50 of the most common words": [within(list(rng.permutation(latin[:80]))) for _ in range(8)],
        "50 common words, the last one half typed": [
            within(list(rng.permutation(latin[:80]))[:49]) + " " + latin[int(j)][:2]
            for j in rng.integers(20, size=8)],
        "250 one-letter words": [" ".join(letters[int(j)] for j in rng.integers(26, size=250))[:MAX_QUERY]
                                 for _ in range(8)],
        "50 title words, each misspelt": [
            within([one_edit(w, rng) if len(w) > 2 else w
                    for w in (title_words[int(j)] for j in rng.integers(len(title_words), size=120))])
            for _ in range(8)],
        "a 500-digit run": ["".join(str(int(d)) for d in rng.integers(10, size=MAX_QUERY)) for _ in range(8)],
        "35 ISBN-like 13-digit numbers": [
            within(["978" + "".join(str(int(d)) for d in rng.integers(10, size=10)) for _ in range(40)])
            for _ in range(8)],
    }
    if len(cjk) >= 2:
        texts["500 CJK characters (499 character pairs)"] = [
            "".join(cjk[int(j)] for j in rng.integers(len(cjk), size=MAX_QUERY)) for _ in range(8)]
    # Within the index's caps, where every word of a query takes part and is completed or corrected (drawn
    # last: the kinds above keep the texts they had before these were added).
    texts.update({
        f"{WORD_CAP} common words, the last one half typed": [
            " ".join(list(rng.permutation(latin[:80]))[:WORD_CAP - 1]) + " " + latin[int(j)][:2]
            for j in rng.integers(20, size=8)],
        f"{WORD_CAP} words of 9 letters, each misspelt": [
            " ".join(one_edit(nine[int(j)], rng) for j in rng.integers(len(nine), size=WORD_CAP))
            for _ in range(8)],
        f"{WORD_CAP} title words, each misspelt, the last half typed": [
            half_typed([one_edit(w, rng) if len(w) > 4 else w
                        for w in (title_words[int(j)]
                                  for j in rng.integers(len(title_words), size=WORD_CAP))])
            for _ in range(8)],
    })
    return texts


def worst_cases(search: Callable[[str], Any], words: list[str], titles: list[str],
                clock: Callable[[], float] = time.thread_time) -> None:
    """The costliest queries one request can send, each timed like the ordinary kinds."""
    rng = np.random.default_rng(11)
    for kind, texts in worst_texts(words, titles, rng).items():
        measure(f"worst: {kind}", lambda i, texts=texts: search(texts[i % len(texts)]), 40, clock)


def one_edit(word: str, rng: np.random.Generator) -> str:
    """`word` with one insertion, deletion, substitution or transposition (of adjacent letters)."""
    at, letter = int(rng.integers(len(word) - 1)), "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(26))]
    kind = int(rng.integers(4))
    if kind == 0:
        return word[:at] + letter + word[at:]
    if kind == 1:
        return word[:at] + word[at + 1:]
    if kind == 2:
        return word[:at] + (letter if letter != word[at] else "q") + word[at + 1:]
    return word[:at] + word[at + 1] + word[at] + word[at + 2:]


def reader_queries(search: Callable[[str], Any], titles: list[str], rng: np.random.Generator,
                   clock: Callable[[], float] = time.thread_time) -> None:
    """What readers type besides clean words: typos, an unfinished last word, other scripts."""
    long_words = [w for t in titles for w in t.lower().split() if len(w) >= 5 and w.isalpha() and w.isascii()]
    very_long = [w for w in long_words if len(w) >= 9] or long_words
    typos = [one_edit(long_words[int(i)], rng) for i in rng.integers(len(long_words), size=300)]
    two_typos = [one_edit(one_edit(very_long[int(i)], rng), rng)
                 for i in rng.integers(len(very_long), size=300)]
    shorter = [t.split() for t in titles if len(t.split()) >= 2]
    with_typo = [f"{w[0]} {one_edit(w[1], rng) if len(w[1]) >= 5 else w[1]}" for w in shorter]
    open_last = [" ".join([*w[:-1], w[-1][:max(1, len(w[-1]) // 2)]]) for w in shorter]
    words, _, _ = vocabularies()
    other_scripts = sorted({w for w in (normalise_text(w) for w in words) if w and NON_LATIN.search(w)})
    cjk_parts = sorted({w[i:i + 2] for w in other_scripts for i in range(len(w) - 1)
                        if CJK.fullmatch(w[i:i + 2])})
    measure("typo: one word, one edit", lambda i: search(typos[i % len(typos)]), 300, clock)
    measure("typo: one long word, two edits", lambda i: search(two_typos[i % len(two_typos)]), 300, clock)
    measure("typo: two title words, one misspelt", lambda i: search(with_typo[i % len(with_typo)]), 300,
            clock)
    measure("prefix: title with its last word half typed",
            lambda i: search(open_last[i % len(open_last)]), 300, clock)
    measure("non-Latin word (Arabic, Cyrillic, Greek, CJK)",
            lambda i: search(other_scripts[i % len(other_scripts)]), 300, clock)
    if cjk_parts:
        measure("CJK: two characters of a title", lambda i: search(cjk_parts[i % len(cjk_parts)]), 200, clock)

