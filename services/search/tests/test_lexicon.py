"""The lexicon's typo neighbourhood as refreshes grow it: the same answers as one made at once."""

from __future__ import annotations

import numpy as np

from bookrec_search.lexicon import RECENT_SHARE, Lexicon

WORDS = ["meditations", "mediations", "medication", "ethics", "ethic", "aesthetics", "kapital", "capital",
         "capitol", "motorcycle", "maintenance", "maintenant", "nietzsche", "aurelius", "aurelian",
         "philosophy", "philology", "zarathustra"]


def near_all(lexicon: Lexicon, words: list[str]) -> dict[str, list[tuple[str, int]]]:
    return {w: sorted((lexicon.by_id[t], d) for t, d in lexicon.near(w, 2)) for w in words}


def test_terms_added_by_refreshes_are_found_as_in_a_lexicon_made_at_once():
    start, later = WORDS[:6], WORDS[6:]
    grown = Lexicon.of({w: i for i, w in enumerate(start)})
    ids = len(start)
    for word in later:  # one refresh per new word: each lands in the recent run until it is joined
        grown = grown.with_terms({word: ids})
        ids += 1
    whole = Lexicon.of({w: i for i, w in enumerate(WORDS)})
    queries = [*WORDS, "meditaitons", "capitl", "nietsche", "filosophy", "zarathushtra"]
    assert near_all(grown, queries) == near_all(whole, queries)
    assert grown.sorted_terms == whole.sorted_terms


def test_the_recent_run_stays_small_and_a_snapshot_holds_one_run():
    base = Lexicon.of({f"term{i:05d}word": i for i in range(400)})
    main = len(base.neighbourhood.hashes)
    one = base.with_terms({"meditations": 400})
    assert len(one.neighbourhood.hashes) == main and len(one.neighbourhood.recent_hashes) > 0  # main not copied
    assert one.neighbourhood.hashes is base.neighbourhood.hashes
    many = base.with_terms({f"new{i:04d}entry": 400 + i for i in range(main // RECENT_SHARE)})
    assert not len(many.neighbourhood.recent_hashes)  # past 1/RECENT_SHARE of the main run: joined
    hashes, ids = one.neighbourhood.joined()
    assert np.all(hashes[:-1] <= hashes[1:])
    assert len(hashes) == len(ids) == main + len(one.neighbourhood.recent_hashes)
    assert set(one.neighbourhood.candidates("meditatons", 1).tolist()) == {400}
