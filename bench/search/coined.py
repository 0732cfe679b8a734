"""New words for synthetic catalogues: syllables of real words, recombined per script. Pure, no I/O.

A growing catalogue keeps meeting words it has not seen (Heaps' law): surnames, places, coinages, words
of other languages. `Coiner` makes the j-th new word of a script from that script's commonest syllables
in the real vocabulary (Latin: consonants then vowels, "bra", "the"; other alphabets: letter pairs), the
digits of j in base (number of syllables) picking them, at least two syllables a word: "dorasel",
"кроми". Consecutive j differ in their first syllable, and each j gives one word, so new words stay
distinct (but for the rare string two syllable sequences both spell); a real word is skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import regex

SCRIPTS = ("Latin", "Cyrillic", "Greek", "Arabic")
_LETTERS = {s: regex.compile(rf"\p{{Script={s}}}+") for s in SCRIPTS}
_LATIN_SYLLABLE = regex.compile(r"[^aeiouy]*[aeiouy]+")
SYLLABLES = 240  # per script, the commonest


def syllables(word: str, script: str) -> list[str]:
    if script == "Latin":
        parts = _LATIN_SYLLABLE.findall(word)
        return [p for p in parts if 1 < len(p) <= 4]
    return [word[i:i + 2] for i in range(0, len(word) - 1, 2)]


class Coiner:
    """The j-th new word of each script, from the scripts' syllables in `words`, and the share of each
    script among the distinct words (what picks the script of the n-th new word)."""

    def __init__(self, words: Iterable[str]) -> None:
        counts = {s: Counter[str]() for s in SCRIPTS}
        distinct = Counter[str]()
        self.real = set(words)
        for word in sorted(self.real):  # in a fixed order: ties among syllables fall the same in every process
            for script, letters in _LETTERS.items():
                if letters.fullmatch(word):
                    counts[script].update(syllables(word, script))
                    distinct[script] += 1
                    break
        self.syllables = {s: [p for p, _ in c.most_common(SYLLABLES)] for s, c in counts.items()
                          if len(c) >= 16}
        total = sum(distinct[s] for s in self.syllables)
        # A cycle of 1,000 new words holds each script by its share (at least one word of each).
        self.cycle: list[str] = []
        for script in self.syllables:
            self.cycle += [script] * max(1, round(1000 * distinct[script] / total))
        self.made = Counter[str]()

    def word(self, script: str, j: int) -> str:
        parts = self.syllables[script]
        base = len(parts)
        j += base  # at least two syllables
        out = []
        while j:
            j, digit = divmod(j, base)
            out.append(parts[digit])
        return "".join(out)

    def next_word(self) -> str:
        """A new word (never a real one), scripts in turn by their shares."""
        while True:
            script = self.cycle[sum(self.made.values()) % len(self.cycle)]
            j = self.made[script]
            self.made[script] += 1
            word = self.word(script, j)
            if word not in self.real:
                return word
