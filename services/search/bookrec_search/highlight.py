"""Where the matched words are in a hit's title and authors: character offsets, pure.

Offsets count Unicode code points of the text as shown ([start, end), as Python slices them), so
`title[start:end]` is the matched word in the reader's own spelling ("Misérables" for "miserables").
"""

from __future__ import annotations

from collections.abc import Collection

from bookrec_catalog.catalog import term_spans


def ranges(text: str, terms: Collection[str]) -> list[tuple[int, int]]:
    """Merged, ascending [start, end) ranges of `text` whose search terms are among `terms`."""
    if not text or not terms:
        return []
    merged: list[list[int]] = []
    for start, end in sorted((s, e) for term, s, e in term_spans(text) if term in terms):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]
