"""Reader activity for trending: who rated or shelved which book when, counted in Redis from the write path.

Ratings calls `ActivityLog.record` after every accepted rating and shelving; the recommendation service
reads the counts (`counts`, or the fleet's shared copy through `shared_counts`). This module is the only
code that touches these keys. It is derived state: if Redis loses it, the recommendation builder replays
the tables into it (`add`) when `complete()` says the marker is gone.

Counting protocol (one Lua script per event, O(1) commands):

- `trending:readers:{book_id}`, sorted set user_id -> epoch seconds of that reader's latest event on the
  book. A window counts a reader once per book: a reader is in a window ending now exactly when their
  latest event is, so only the latest matters. Earlier or equal events change nothing (a replay is
  idempotent). Members older than the longest window plus a margin are trimmed on the next write.
- `trending:hour:{H}` (H = epoch hours), sorted set book_id -> readers whose latest event on the book
  fell in hour H. A reader's new event moves them from their old hour to the new one (-1, +1).
  Expires once the longest window and the margin have passed it.
- `trending:win:{L}` for L = 24, 168, 720 hours, sorted set book_id -> readers in the window: the sum of
  the hour buckets after `trending:applied:{L}`, kept equal to it by the event script (+1 when a reader
  enters the window, nothing when they only move inside it) and by `roll`, which subtracts each hour's
  bucket once as it leaves the window (one ZINCRBY per book in that hour: proportional to events).
  A window is whole UTC hours: `day` is the current hour and the 23 before it.
- `trending:state`, the marker: set when the state was (re)built from the tables; gone with the data.
- Imported activity (the Open Library dumps' dated events, anonymous: no reader to dedupe): each book's
  share is *set*, never added (`set_imported`): `trending:imported:{book_id}` records the hours and events
  last applied for the book, and a new share moves the hour buckets and the windows by the difference
  (the same window rule as an event's). So applying the same share again changes nothing.
  `trending:imported-position` is how far the books' change feed has been applied (the builder's).

Reading is cheap on purpose: the top of a window is a ZREVRANGE, and `now` reads the 7 earlier
24-hour blocks (168 hour buckets, ZMSCORE) only for books with at least `NOW_MIN_EVENTS` in the last
24 h. One process per fleet computes this under a lease every `SHARE_SECONDS` and stores it in one key
(`trending:counts`); every replica reads that key (`shared_counts`).

Keys are built inside the scripts from a prefix: a single-shard Redis (ElastiCache non-cluster), as
the lease and the recommendation cache assume.

A Redis failure in `record` (`bookrec_common.clients.redis_unavailable`) is logged and counted in
`activity_record_failures_total`, never raised: losing an event must not fail an accepted write.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from bookrec_common.clients import redis_unavailable

log = logging.getLogger("bookrec.activity")

RECORD_FAILURES = Counter("activity_record_failures_total",
                          "Reader events not counted for trending because Redis was unavailable")

HOUR = 3600
# The rolling windows kept in Redis, in hours: day, week, month.
WINDOW_HOURS = (24, 168, 720)
# Hour buckets and readers' latest events outlive the longest window by this much, so a late `roll`
# still finds the buckets it must subtract.
MARGIN_HOURS = 168
# `now` (Open Library): the last 24 h against the 7 daily counts before them; z is 0 under this many.
NOW_DAYS = 7
NOW_MIN_EVENTS = 5
# How many books of each window are read (and how many `now` candidates are scored) per computation.
DEFAULT_DEPTH = 1000
# How long one computation of the counts serves the fleet (the lease's TTL).
SHARE_SECONDS = 20.0

# Shared by the scripts below (each is sent with them in front): a window's last subtracted hour (set to
# `now_h - hours` the first time), and an increment that removes a book whose count reaches zero.
_HELPERS = """
local function applied_hour(prefix, hours, now_h)
  local key = prefix .. 'applied:' .. hours
  local applied = tonumber(redis.call('GET', key))
  if not applied then
    applied = now_h - hours
    redis.call('SET', key, applied)
  end
  return applied
end
local function counted(key, amount, book)
  if tonumber(redis.call('ZINCRBY', key, amount, book)) <= 0 then redis.call('ZREM', key, book) end
end
"""

_RECORD = _HELPERS + """
local book, user, t, now_h = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local prefix, keep = ARGV[5], tonumber(ARGV[6])
local readers = prefix .. 'readers:' .. book
local old = redis.call('ZSCORE', readers, user)
if old then
  old = tonumber(old)
  if t <= old then return 0 end
end
redis.call('ZADD', readers, t, user)
redis.call('ZREMRANGEBYSCORE', readers, '-inf', '(' .. (now_h * 3600 - keep))
redis.call('EXPIRE', readers, keep)
local h1 = math.floor(t / 3600)
local h0 = old and math.floor(old / 3600)
if h0 == h1 then return 1 end
if h0 then
  local bucket = prefix .. 'hour:' .. h0
  if redis.call('EXISTS', bucket) == 1 then counted(bucket, -1, book) end
end
local bucket = prefix .. 'hour:' .. h1
redis.call('ZINCRBY', bucket, 1, book)
redis.call('EXPIREAT', bucket, (h1 + 1) * 3600 + keep)
for i = 7, #ARGV do
  local hours = tonumber(ARGV[i])
  local applied = applied_hour(prefix, hours, now_h)
  local before = (h0 and h0 > applied) and 1 or 0
  local after = (h1 > applied) and 1 or 0
  if after ~= before then counted(prefix .. 'win:' .. hours, after - before, book) end
end
return 1
"""

_SET_IMPORTED = _HELPERS + """
local book, now_h, prefix, keep, new = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5]
local key = prefix .. 'imported:' .. book
local old = redis.call('GET', key) or ''
if old == new then return 0 end
local oldest = now_h - keep / 3600
local delta, hours, last = {}, {}, nil
for h, n in string.gmatch(old, '(%d+):(%d+)') do
  h = tonumber(h)
  if h > oldest then
    if not delta[h] then delta[h] = 0; hours[#hours + 1] = h end
    delta[h] = delta[h] - tonumber(n)
  end
end
for h, n in string.gmatch(new, '(%d+):(%d+)') do
  h = tonumber(h)
  if not delta[h] then delta[h] = 0; hours[#hours + 1] = h end
  delta[h] = delta[h] + tonumber(n)
  if not last or h > last then last = h end
end
for _, h in ipairs(hours) do
  local d = delta[h]
  if d ~= 0 then
    local bucket = prefix .. 'hour:' .. h
    counted(bucket, d, book)
    redis.call('EXPIREAT', bucket, (h + 1) * 3600 + keep)
    for i = 6, #ARGV do
      local window = tonumber(ARGV[i])
      if h > applied_hour(prefix, window, now_h) then counted(prefix .. 'win:' .. window, d, book) end
    end
  end
end
if new == '' then
  redis.call('DEL', key)
else
  redis.call('SET', key, new)
  redis.call('EXPIREAT', key, (last + 1) * 3600 + keep)
end
return 1
"""

_ROLL = _HELPERS + """
local now_h, prefix = tonumber(ARGV[1]), ARGV[2]
local subtracted = 0
for i = 3, #ARGV do
  local hours = tonumber(ARGV[i])
  local applied_key = prefix .. 'applied:' .. hours
  local win = prefix .. 'win:' .. hours
  local target = now_h - hours
  local applied = tonumber(redis.call('GET', applied_key))
  if not applied then applied = target end
  for h = applied + 1, target do
    local members = redis.call('ZRANGE', prefix .. 'hour:' .. h, 0, -1, 'WITHSCORES')
    for j = 1, #members, 2 do
      subtracted = subtracted + 1
      counted(win, -tonumber(members[j + 1]), members[j])
    end
  end
  if applied < target or not redis.call('GET', applied_key) then redis.call('SET', applied_key, target) end
end
return subtracted
"""


@dataclass(frozen=True)
class ActivityEvent:
    book_id: str
    user_id: str
    at: float  # epoch seconds


@dataclass(frozen=True)
class ActivityCounts:
    """Counts as of `hour` (epoch hours): each window's top books, and the `now` candidates' history."""

    hour: int
    windows: dict[int, list[tuple[str, int]]]  # window hours -> (book_id, readers), most first
    # book_id -> (readers in the last 24 h, readers in each of the 7 earlier 24 h blocks, nearest first)
    recent: dict[str, tuple[int, tuple[int, ...]]]

    def to_json(self) -> bytes:
        return json.dumps({"hour": self.hour, "windows": {str(h): rows for h, rows in self.windows.items()},
                           "recent": {b: [n, list(days)] for b, (n, days) in self.recent.items()}},
                          separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ActivityCounts:
        data = json.loads(raw)
        return cls(hour=int(data["hour"]),
                   windows={int(h): [(str(b), int(n)) for b, n in rows] for h, rows in data["windows"].items()},
                   recent={str(b): (int(n), tuple(int(d) for d in days)) for b, (n, days) in data["recent"].items()})


def epoch_seconds(stamp: str) -> float:
    """An ISO-8601 UTC stamp as the tables write it (2026-12-06T23:15:59.123456Z) in epoch seconds."""
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{stamp!r} has no time zone")
    return parsed.timestamp()


class ActivityLog:
    """Reader events for trending, in the service's Redis (None: trending disabled, nothing recorded)."""

    def __init__(self, redis: Any | None, *, prefix: str = "trending:", clock: Callable[[], float] = time.time,
                 depth: int = DEFAULT_DEPTH) -> None:
        self._redis = self.redis = redis
        self.prefix = prefix
        self._clock = clock
        self.depth = depth
        self._keep = (max(WINDOW_HOURS) + MARGIN_HOURS) * HOUR
        if redis is not None:
            self._record = redis.register_script(_RECORD)
            self._roll = redis.register_script(_ROLL)
            self._set_imported = redis.register_script(_SET_IMPORTED)

    @property
    def enabled(self) -> bool:
        return self._redis is not None

    def _args(self, event: ActivityEvent, now_hour: int) -> list[Any]:
        return [event.book_id, event.user_id, repr(event.at), now_hour, self.prefix, self._keep,
                *WINDOW_HOURS]

    async def record(self, book_id: str, user_id: str, at: str) -> None:
        """Count one accepted rating or shelving (`at`: the stamp the write used). Best effort: a Redis
        failure is logged and counted, never raised (the write it follows has already succeeded)."""
        if self._redis is None:
            return
        event = ActivityEvent(book_id, user_id, epoch_seconds(at))
        try:
            await self._record(args=self._args(event, int(self._clock() // HOUR)))
        except Exception as exc:
            if not redis_unavailable(exc):
                raise
            RECORD_FAILURES.inc()
            log.warning("trending: event not counted (%s: %s)", type(exc).__name__, exc)

    async def add(self, events: Iterable[ActivityEvent], batch: int = 500) -> int:
        """Count many events (a rebuild, a replay), pipelined; Redis failures are raised. Events older than
        what is kept are skipped. Returns how many were sent."""
        assert self._redis is not None, "no Redis: nothing to add to"
        now_hour = int(self._clock() // HOUR)
        oldest = now_hour * HOUR - self._keep
        sent = 0
        pending: list[ActivityEvent] = []
        for event in events:
            if event.at < oldest:
                continue
            pending.append(event)
            if len(pending) >= batch:
                sent += await self._send(pending, now_hour)
                pending = []
        if pending:
            sent += await self._send(pending, now_hour)
        return sent

    def horizon_stamp(self) -> str:
        """The oldest event still counted anywhere, as the tables stamp it (what a rebuild must replay)."""
        oldest = int(self._clock() // HOUR) * HOUR - self._keep
        return datetime.fromtimestamp(oldest, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    async def _send(self, events: Sequence[ActivityEvent], now_hour: int) -> int:
        assert self._redis is not None
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                await self._record(args=self._args(event, now_hour), client=pipe)
            await pipe.execute()
        return len(events)

    @property
    def kept_hours(self) -> int:
        """How far back events count anywhere (the longest window and the margin)."""
        return self._keep // HOUR

    def hour_now(self) -> int:
        return int(self._clock() // HOUR)

    async def set_imported(self, shares: Iterable[tuple[str, Mapping[int, int]]], batch: int = 500) -> int:
        """Set each book's share of imported events to `hours` ({epoch hour: events}; empty: none), pipelined.
        Only the difference with the share last set moves the counts: setting the same share again changes
        nothing. Hours must be within what is kept and not after the current one (the caller's
        `trending.imported_hours`). Returns how many books' shares changed; Redis failures are raised."""
        assert self._redis is not None, "no Redis: nothing to set"
        now_hour = self.hour_now()
        changed = 0
        pending: list[tuple[str, str]] = []

        async def send() -> int:
            assert self._redis is not None
            async with self._redis.pipeline(transaction=False) as pipe:
                for book_id, encoded in pending:
                    await self._set_imported(args=[book_id, now_hour, self.prefix, self._keep, encoded,
                                                   *WINDOW_HOURS], client=pipe)
                replies = await pipe.execute()
            return sum(int(reply) for reply in replies)

        for book_id, hours in shares:
            pending.append((book_id, ",".join(f"{h}:{n}" for h, n in sorted(hours.items()) if n > 0)))
            if len(pending) >= batch:
                changed += await send()
                pending = []
        if pending:
            changed += await send()
        return changed

    async def imported_books(self) -> set[str]:
        """The books that hold a share of imported events (a SCAN of their keys: a full resync only)."""
        assert self._redis is not None
        start = len(f"{self.prefix}imported:")
        return {_text(key)[start:] async for key in self._redis.scan_iter(match=f"{self.prefix}imported:*",
                                                                             count=1000)}

    async def imported_position(self) -> float | None:
        """How far the books' imported activity has been applied (epoch seconds); None: never, or lost."""
        assert self._redis is not None
        raw = await self._redis.get(f"{self.prefix}imported-position")
        return float(raw) if raw is not None else None

    async def set_imported_position(self, seconds: float) -> None:
        assert self._redis is not None
        await self._redis.set(f"{self.prefix}imported-position", repr(seconds).encode())

    async def roll(self) -> int:
        """Move every window's start to the current hour: subtract the hours that left it. Idempotent and
        atomic (one script), so any process may call it; returns how many (book, hour) counts it subtracted."""
        assert self._redis is not None
        return int(await self._roll(args=[int(self._clock() // HOUR), self.prefix, *WINDOW_HOURS]))

    async def counts(self) -> ActivityCounts:
        """Roll, then read each window's top `depth` and the `now` candidates' daily history."""
        assert self._redis is not None
        await self.roll()
        hour = int(self._clock() // HOUR)
        async with self._redis.pipeline(transaction=False) as pipe:
            for hours in WINDOW_HOURS:
                pipe.zrevrange(f"{self.prefix}win:{hours}", 0, self.depth - 1, withscores=True)
            pipe.zrevrangebyscore(f"{self.prefix}win:24", "+inf", NOW_MIN_EVENTS, start=0, num=self.depth,
                                  withscores=True)
            replies = await pipe.execute()
        windows = {hours: [(_text(book), int(n)) for book, n in rows]
                   for hours, rows in zip(WINDOW_HOURS, replies, strict=False)}
        candidates = [(_text(book), int(n)) for book, n in replies[-1]]
        recent: dict[str, tuple[int, tuple[int, ...]]] = {}
        if candidates:
            books = [book for book, _ in candidates]
            # The 7 blocks of 24 hours before the last 24: hours hour-24k-23 .. hour-24k, k = 1..7.
            async with self._redis.pipeline(transaction=False) as pipe:
                for k in range(1, NOW_DAYS + 1):
                    for h in range(hour - 24 * k - 23, hour - 24 * k + 1):
                        pipe.zmscore(f"{self.prefix}hour:{h}", books)
                scores = await pipe.execute()
            daily = [[0] * len(books) for _ in range(NOW_DAYS)]
            for index, row in enumerate(scores):
                block = daily[index // 24]
                for i, score in enumerate(row):
                    if score:
                        block[i] += int(score)
            recent = {book: (n, tuple(daily[k][i] for k in range(NOW_DAYS)))
                      for i, (book, n) in enumerate(candidates)}
        return ActivityCounts(hour=hour, windows=windows, recent=recent)

    async def shared_counts(self, lease: Any) -> ActivityCounts | None:
        """The fleet's counts: computed here and stored if `lease` (a `bookrec_common.lease.Lease` with a TTL
        of about SHARE_SECONDS) is ours now, else the copy the holder stored (None: none yet). So each
        period one process pays for `counts` and every replica reads one key."""
        assert self._redis is not None
        key = f"{self.prefix}counts"
        if await lease.acquire() is not None:
            counts = await self.counts()
            await self._redis.set(key, counts.to_json(), ex=int(SHARE_SECONDS * 6))
            return counts
        raw = await self._redis.get(key)
        return ActivityCounts.from_json(raw) if raw else None

    async def complete(self) -> bool:
        """Whether the state was built from the tables and not lost since (the marker exists)."""
        assert self._redis is not None
        return bool(await self._redis.exists(f"{self.prefix}state"))

    async def mark_complete(self) -> None:
        assert self._redis is not None
        await self._redis.set(f"{self.prefix}state", str(self._clock()).encode())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
