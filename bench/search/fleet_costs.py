"""The fleet's DynamoDB and S3 request costs per hour, new design (artifacts + change feed) beside the old
(every replica scanning), from the item counts bench_fleet measures. Pure arithmetic; prints a table.

    python -m bench.search.fleet_costs [--books 1000000] [--ratings 6000000]
        [--changes 1 10] [--replicas 2 10] [--feed-reads-per-change 1.5]

Units (on-demand, eventually consistent reads): a Query or Scan is billed 0.5 read unit per 4 KB of the
items it reads (their summed size, rounded up per request; a request reading nothing still costs 0.5),
a write 1 write unit per 1 KB of the item, once for the table and once per GSI entry it writes (twice
when it moves a GSI's key: the old entry deleted, the new one put).

Per hour, with B books of `book_kb`, R ratings of `rating_kb`, c book changes a second, N replicas of
each service, a refresh every 30 s (120 an hour, 8 feed shards), a build every 15 min (4 an hour):

  new, reads    search replicas  N x (f x 3600 c x book_kb/8 + 120 x 8 x 0.5)      f = feed reads per change
                search builder   4 x ((900 + 15) c x book_kb/8 + 8 x 0.5)           (+ B x book_kb/8 once)
                reco builder     4 x (8 x 0.5 + [c > 0] x (R x rating_kb/8 + B x book_kb/8))
  new, writes   the changes GSI  2 x 3600 c x ceil(book_kb)          (its key moves with each change)
  new, S3       GET              2 services x N x (60 manifest polls + 4 payloads)   (payloads: if c > 0)
                PUT              2 services x 4 builds x 2 (payload + manifest)      (if c > 0)
  old, reads    search replicas  N x 120 x B x book_kb/8             (+ N x B x book_kb/8 per start)
                reco replicas    N x 4 x (R x rating_kb/8 + B x book_kb/8)
"""

from __future__ import annotations

import argparse
import math

# us-east-1 list prices: DynamoDB on-demand (aws.amazon.com/dynamodb/pricing/on-demand, since the November
# 2024 cut) and S3 Standard requests (aws.amazon.com/s3/pricing).
READ_UNIT = 0.125 / 1e6
WRITE_UNIT = 0.625 / 1e6
S3_GET = 0.0004 / 1000
S3_PUT = 0.005 / 1000

REFRESHES_PER_HOUR = 120
BUILDS_PER_HOUR = 4
SHARDS = 8
EMPTY_QUERY = 0.5
POLLS_PER_HOUR = 60


def new_design(b: int, r: int, c: float, n: int, book_kb: float, rating_kb: float,
               f: float) -> dict[str, float]:
    search_replicas = n * (f * 3600 * c * book_kb / 8 + REFRESHES_PER_HOUR * SHARDS * EMPTY_QUERY)
    search_builder = BUILDS_PER_HOUR * ((900 + 15) * c * book_kb / 8 + SHARDS * EMPTY_QUERY)
    full_scans = r * rating_kb / 8 + b * book_kb / 8 if c > 0 else 0  # only when something changed
    reco_builder = BUILDS_PER_HOUR * (SHARDS * EMPTY_QUERY + full_scans)
    writes = 2 * 3600 * c * math.ceil(book_kb)
    changing = BUILDS_PER_HOUR if c > 0 else 0  # nothing changed: no build publishes, no replica fetches
    gets = 2 * n * (POLLS_PER_HOUR + changing)
    puts = 2 * changing * 2
    reads = search_replicas + search_builder + reco_builder
    return {"reads": reads, "search_replicas": search_replicas, "search_builder": search_builder,
            "reco_builder": reco_builder, "writes": writes, "gets": gets, "puts": puts,
            "dollars": reads * READ_UNIT + writes * WRITE_UNIT + gets * S3_GET + puts * S3_PUT}


def old_design(b: int, r: int, n: int, book_kb: float, rating_kb: float) -> dict[str, float]:
    search = n * REFRESHES_PER_HOUR * b * book_kb / 8
    reads = search + n * BUILDS_PER_HOUR * (r * rating_kb / 8 + b * book_kb / 8)
    return {"reads": reads, "dollars": reads * READ_UNIT}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--books", type=int, default=1_000_000)
    parser.add_argument("--ratings", type=int, default=6_000_000)
    parser.add_argument("--book-kb", type=float, default=1.0)
    parser.add_argument("--rating-kb", type=float, default=0.1)
    parser.add_argument("--changes", type=float, nargs="+", default=[1, 10], help="book changes per second")
    parser.add_argument("--replicas", type=int, nargs="+", default=[2, 10], help="replicas of each service")
    parser.add_argument("--feed-reads-per-change", type=float, default=1.5, help="measured by bench_fleet")
    args = parser.parse_args()
    print(f"B = {args.books:,} books of {args.book_kb} KB, R = {args.ratings:,} ratings of "
          f"{args.rating_kb} KB; {args.feed_reads_per_change} feed items read per change per replica")
    print(f"{'c/s':>5} {'N':>3} | {'new: read units/h':>17} {'write units/h':>13} {'S3 GET/h':>8} "
          f"{'PUT/h':>5} {'$/h':>7} {'$/month':>8} | {'old: read units/h':>17} {'$/h':>7} {'$/month':>8}")
    def new(c: float, n: int) -> dict[str, float]:
        return new_design(args.books, args.ratings, c, n, args.book_kb, args.rating_kb,
                          args.feed_reads_per_change)

    for c in args.changes:
        for n in args.replicas:
            new_ = new(c, n)
            old = old_design(args.books, args.ratings, n, args.book_kb, args.rating_kb)
            print(f"{c:5g} {n:3d} | {new_['reads']:17,.0f} {new_['writes']:13,.0f} {new_['gets']:8,.0f} "
                  f"{new_['puts']:5,.0f} {new_['dollars']:7.3f} {new_['dollars'] * 730:8.2f} | "
                  f"{old['reads']:17,.0f} {old['dollars']:7.3f} {old['dollars'] * 730:8.2f}")
    print("new design's read units/h by part (search replicas, search builder, recommendation builder):")
    for c in args.changes:
        for n in args.replicas:
            new_ = new(c, n)
            print(f"{c:5g} {n:3d} | {new_['search_replicas']:12,.0f} {new_['search_builder']:10,.0f} "
                  f"{new_['reco_builder']:12,.0f}")


if __name__ == "__main__":
    main()
