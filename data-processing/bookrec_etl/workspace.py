"""The extractor's on-disk maps (SQLite): authors, works, editions, ratings, shelves and dated events
between passes.

Dumps hold tens of millions of records; keeping them in dicts would tie
memory to input size. SQLite with a bounded page cache keeps memory flat
whatever the dump size; redirects are folded in with set-based SQL rather
than row by row. This is the only module that touches SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

PAGE_CACHE_KIB = 64 * 1024
SORTER_KIB = 16 * 1024
MAX_REDIRECT_HOPS = 10

SCHEMA = """
CREATE TABLE authors (id INTEGER PRIMARY KEY, canonical INTEGER NOT NULL, name TEXT NOT NULL);
CREATE TABLE author_redirects (id INTEGER PRIMARY KEY, target INTEGER NOT NULL);
CREATE TABLE works (id INTEGER PRIMARY KEY, facts BLOB NOT NULL);
CREATE TABLE work_redirects (id INTEGER PRIMARY KEY, target INTEGER NOT NULL);
CREATE TABLE editions (work INTEGER NOT NULL, isbns TEXT NOT NULL, cover INTEGER, language TEXT,
                       year INTEGER);
CREATE TABLE ratings (work INTEGER PRIMARY KEY, s1 INTEGER NOT NULL, s2 INTEGER NOT NULL, s3 INTEGER NOT NULL,
                      s4 INTEGER NOT NULL, s5 INTEGER NOT NULL);
CREATE TABLE shelves (work INTEGER PRIMARY KEY, want_to_read INTEGER NOT NULL, currently_reading INTEGER NOT NULL,
                      read INTEGER NOT NULL);
CREATE TABLE activity (work INTEGER NOT NULL, day INTEGER NOT NULL, events INTEGER NOT NULL,
                       PRIMARY KEY (work, day)) WITHOUT ROWID;
"""

# work, isbns (space-separated), cover, language, year
EditionRow = tuple[int, str, int | None, str | None, int | None]
Stars = tuple[int, int, int, int, int]
Shelved = tuple[int, int, int]  # want_to_read, currently_reading, read
Days = list[tuple[int, int]]  # (day, events), days ascending


class JoinedWork(NamedTuple):
    """A work with what the other dumps say of it (stars/shelved None: no line of that dump names it)."""

    work: int
    facts: bytes
    stars: Stars | None
    editions: list[EditionRow]
    shelved: Shelved | None
    days: Days


class Workspace:
    """One extraction's scratch database; delete the file when done."""

    def __init__(self, path: Path, fresh: bool = True) -> None:
        """`fresh`: a new, empty workspace; else one another process filled, opened to read (shared)."""
        if fresh:
            path.unlink(missing_ok=True)
        self.path = path
        self._db = sqlite3.connect(path if fresh else f"file:{quote(str(path))}?mode=ro", isolation_level=None,
                                   uri=not fresh)
        # Scratch data: a crash restarts the extraction, so no journal and no fsync.
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE",
                       "locking_mode = EXCLUSIVE", f"cache_size = -{PAGE_CACHE_KIB}"):
            if fresh or "locking_mode" not in pragma:
                self._db.execute(f"PRAGMA {pragma}")
        if fresh:
            self._db.executescript(SCHEMA)
        self.author = lru_cache(maxsize=50_000)(self._author)  # bounded: popular authors stay

    def close(self, keep: bool = False) -> None:
        """`keep`: leave the file for another process (a pass run beside the main one)."""
        self._db.close()
        if not keep:
            self.path.unlink(missing_ok=True)

    def share(self) -> None:
        """Let other processes read the file (the write pass split between processes): the tables they may
        read exist (a reader cannot create them), and the exclusive lock is dropped."""
        self._db.execute(self._WORK_DELETES)
        self._db.execute("PRAGMA locking_mode = NORMAL")
        self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the next access releases the lock

    def _many(self, sql: str, rows: Iterable[tuple]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(sql, rows)
        self._db.execute("COMMIT")

    # authors ---------------------------------------------------------------------------------------

    def add_authors(self, rows: Iterable[tuple[int, str]]) -> None:
        self._many("INSERT OR REPLACE INTO authors VALUES (?, ?, ?)", ((n, n, name) for n, name in rows))

    def add_author_redirects(self, rows: Iterable[tuple[int, int]]) -> None:
        self._many("INSERT OR REPLACE INTO author_redirects VALUES (?, ?)", rows)

    def resolve_author_redirects(self) -> None:
        """A redirected author id answers with its target's canonical id and name (chains followed)."""
        for _ in range(MAX_REDIRECT_HOPS):
            added = self._db.execute(
                "INSERT OR IGNORE INTO authors SELECT r.id, a.canonical, a.name "
                "FROM author_redirects r JOIN authors a ON a.id = r.target").rowcount
            if added <= 0:
                break

    def _author(self, number: int) -> tuple[int, str] | None:
        return self._db.execute("SELECT canonical, name FROM authors WHERE id = ?", (number,)).fetchone()

    def author_count(self) -> int:
        return self._db.execute("SELECT count(*) FROM authors").fetchone()[0]

    # works, editions, ratings ----------------------------------------------------------------------

    def add_works(self, rows: Iterable[tuple[int, bytes]]) -> None:
        self._many("INSERT OR REPLACE INTO works VALUES (?, ?)", rows)

    def work_count(self) -> int:
        return self._db.execute("SELECT count(*) FROM works").fetchone()[0]

    def add_work_redirects(self, rows: Iterable[tuple[int, int]]) -> None:
        self._many("INSERT OR REPLACE INTO work_redirects VALUES (?, ?)", rows)

    def add_editions(self, rows: Iterable[EditionRow]) -> None:
        self._many("INSERT INTO editions VALUES (?, ?, ?, ?, ?)", rows)

    def add_editions_from(self, other: Path) -> None:
        """The editions another process read into a workspace of its own (file order kept)."""
        self._db.execute("ATTACH DATABASE ? AS other", (str(other),))
        self._db.execute("BEGIN")
        self._db.execute("INSERT INTO editions SELECT * FROM other.editions ORDER BY rowid")
        self._db.execute("COMMIT")
        self._db.execute("DETACH DATABASE other")

    def add_ratings(self, totals: dict[int, list[int]]) -> None:
        self._many("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (work) DO UPDATE SET "
                   "s1 = s1 + excluded.s1, s2 = s2 + excluded.s2, s3 = s3 + excluded.s3, "
                   "s4 = s4 + excluded.s4, s5 = s5 + excluded.s5",
                   ((work, *stars) for work, stars in totals.items()))

    def add_shelves(self, totals: dict[int, list[int]]) -> None:
        self._many("INSERT INTO shelves VALUES (?, ?, ?, ?) ON CONFLICT (work) DO UPDATE SET "
                   "want_to_read = want_to_read + excluded.want_to_read, "
                   "currently_reading = currently_reading + excluded.currently_reading, "
                   "read = read + excluded.read", ((work, *shelved) for work, shelved in totals.items()))

    def add_activity(self, events: dict[tuple[int, int], int]) -> None:
        self._many("INSERT INTO activity VALUES (?, ?, ?) ON CONFLICT (work, day) DO UPDATE SET "
                   "events = events + excluded.events", ((w, d, n) for (w, d), n in events.items()))

    def activity_pairs(self) -> int:
        """(work, day) pairs held."""
        return self._db.execute("SELECT count(*) FROM activity").fetchone()[0]

    def keep_activity_since(self, first_day: int) -> None:
        """Drop the events dated before `first_day`."""
        self._db.execute("DELETE FROM activity WHERE day < ?", (first_day,))

    def resolve_work_redirects(self) -> int:
        """Move editions, ratings, shelf entries and dated events of redirected works onto the works they
        now live in.

        Returns how many redirects point at a work that exists.
        """
        db = self._db
        db.execute("BEGIN")
        for _ in range(MAX_REDIRECT_HOPS):  # A -> B -> C becomes A -> C
            changed = db.execute(
                "UPDATE work_redirects SET target = (SELECT r.target FROM work_redirects r "
                "WHERE r.id = work_redirects.target) "
                "WHERE target IN (SELECT id FROM work_redirects) AND target != id").rowcount
            if changed <= 0:
                break
        db.execute("UPDATE editions SET work = (SELECT target FROM work_redirects WHERE id = editions.work) "
                   "WHERE work IN (SELECT id FROM work_redirects)")
        db.execute("INSERT INTO ratings SELECT r.target, x.s1, x.s2, x.s3, x.s4, x.s5 "
                   "FROM ratings x JOIN work_redirects r ON r.id = x.work WHERE r.target != r.id "
                   "ON CONFLICT (work) DO UPDATE SET s1 = s1 + excluded.s1, s2 = s2 + excluded.s2, "
                   "s3 = s3 + excluded.s3, s4 = s4 + excluded.s4, s5 = s5 + excluded.s5")
        db.execute("DELETE FROM ratings WHERE work IN (SELECT id FROM work_redirects WHERE target != id)")
        db.execute("INSERT INTO shelves SELECT r.target, x.want_to_read, x.currently_reading, x.read "
                   "FROM shelves x JOIN work_redirects r ON r.id = x.work WHERE r.target != r.id "
                   "ON CONFLICT (work) DO UPDATE SET want_to_read = want_to_read + excluded.want_to_read, "
                   "currently_reading = currently_reading + excluded.currently_reading, "
                   "read = read + excluded.read")
        db.execute("DELETE FROM shelves WHERE work IN (SELECT id FROM work_redirects WHERE target != id)")
        db.execute("INSERT INTO activity SELECT r.target, x.day, x.events "
                   "FROM activity x JOIN work_redirects r ON r.id = x.work WHERE r.target != r.id "
                   "ON CONFLICT (work, day) DO UPDATE SET events = events + excluded.events")
        db.execute("DELETE FROM activity WHERE work IN (SELECT id FROM work_redirects WHERE target != id)")
        live = db.execute("SELECT count(*) FROM work_redirects r JOIN works w ON w.id = r.target").fetchone()
        live = live[0]
        # The index sorter holds up to a page cache's worth of rows in memory: give it a small one.
        db.execute(f"PRAGMA cache_size = -{SORTER_KIB}")
        db.execute("CREATE INDEX editions_by_work ON editions (work)")
        db.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        db.execute("COMMIT")
        return live

    def work_at(self, fraction: float) -> int | None:
        """The id of the work `fraction` of the way through the works in id order (where to split the write)."""
        found = self._db.execute("SELECT id FROM works ORDER BY id LIMIT 1 OFFSET ?",
                                 (int(self.work_count() * fraction),)).fetchone()
        return found[0] if found else None

    def joined_works(self, first: int | None = None, stop: int | None = None) -> Iterator[JoinedWork]:
        """Every work in id order (ids in [first, stop) when given) with its rating totals, shelf totals,
        editions and dated events (merge joins of sorted scans)."""
        bounds = (-1 if first is None else first, 2 ** 62 if stop is None else stop)
        works = self._db.execute("SELECT w.id, w.facts, r.s1, r.s2, r.s3, r.s4, r.s5, "
                                 "s.want_to_read, s.currently_reading, s.read FROM works w "
                                 "LEFT JOIN ratings r ON r.work = w.id LEFT JOIN shelves s ON s.work = w.id "
                                 "WHERE w.id >= ? AND w.id < ? ORDER BY w.id", bounds)
        editions = self._db.execute("SELECT work, isbns, cover, language, year FROM editions "
                                    "INDEXED BY editions_by_work WHERE work >= ? AND work < ? "
                                    "ORDER BY work, rowid", bounds)
        activity = self._db.execute("SELECT work, day, events FROM activity WHERE work >= ? AND work < ? "
                                    "ORDER BY work, day", bounds)
        pending = editions.fetchone()
        dated = activity.fetchone()
        for work, facts, *counts in works:
            while pending is not None and pending[0] < work:  # editions of works not in the dump
                pending = editions.fetchone()
            mine = []
            while pending is not None and pending[0] == work:
                mine.append(pending)
                pending = editions.fetchone()
            while dated is not None and dated[0] < work:
                dated = activity.fetchone()
            days = []
            while dated is not None and dated[0] == work:
                days.append((dated[1], dated[2]))
                dated = activity.fetchone()
            s1, s2, s3, s4, s5, want, reading, read = counts
            yield JoinedWork(work, facts, None if s1 is None else (s1, s2, s3, s4, s5), mine,
                             None if want is None else (want, reading, read), days)

    # works the dump deleted or redirected: the lines that tell the loader ----------------------------

    _WORK_DELETES = "CREATE TABLE IF NOT EXISTS work_deletes (id INTEGER PRIMARY KEY)"

    def add_work_deletes(self, numbers: Iterable[tuple[int]]) -> None:
        self._db.execute(self._WORK_DELETES)
        self._many("INSERT OR REPLACE INTO work_deletes VALUES (?)", numbers)

    def work_lifecycle(self) -> Iterator[tuple[int, int | None, str]]:
        """After resolve_work_redirects: every deleted or redirected work that is no work of the dump (a key
        given as both keeps its work), in id order, as (id, final target or None, what): "deleted",
        "redirect" (to a work of the dump), "to deleted" (a chain ending at a deleted work), "cycle" (a chain
        that reaches no work within MAX_REDIRECT_HOPS) or "unknown target" (a work not in the dump)."""
        self._db.execute(self._WORK_DELETES)
        yield from self._db.execute(
            "SELECT id, NULL, 'deleted' FROM work_deletes WHERE id NOT IN (SELECT id FROM works) "
            "UNION ALL SELECT r.id, r.target, CASE "
            "WHEN r.target = r.id OR r.target IN (SELECT id FROM work_redirects) THEN 'cycle' "
            "WHEN r.target IN (SELECT id FROM works) THEN 'redirect' "
            "WHEN r.target IN (SELECT id FROM work_deletes) THEN 'to deleted' ELSE 'unknown target' END "
            "FROM work_redirects r WHERE r.id NOT IN (SELECT id FROM works) ORDER BY 1")
