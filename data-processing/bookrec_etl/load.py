"""JSONL -> DynamoDB with BatchWriteItem: 25 items a call, several concurrent writers.

Unprocessed items are retried with exponential backoff and jitter. PutItem
semantics make a load idempotent (the same file twice leaves the same
table). A checkpoint file records how many lines are safely written, so an
interrupted load continues from there.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from bookrec_common.dynamo import to_item

log = logging.getLogger("bookrec.etl.load")
BATCH = 25


@dataclass
class LoadReport:
    read: int = 0
    written: int = 0
    calls: int = 0
    retried_items: int = 0
    skipped_from_checkpoint: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def items_per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0


class Checkpoint:
    """Lines [0, done) of the input are in the table."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def read(self) -> int:
        if self.path is None or not self.path.exists():
            return 0
        return int(json.loads(self.path.read_text()).get("lines_done", 0))

    def write(self, done: int) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"lines_done": done}))
            tmp.replace(self.path)

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _write_batch(client: Any, table: str, items: list[dict[str, Any]], report: LoadReport,
                 max_attempts: int = 10) -> None:
    request = {table: [{"PutRequest": {"Item": item}} for item in items]}
    for attempt in range(max_attempts):
        response = client.batch_write_item(RequestItems=request)
        report.calls += 1
        unprocessed = response.get("UnprocessedItems") or {}
        if not unprocessed:
            return
        report.retried_items += len(unprocessed.get(table, []))
        request = unprocessed
        time.sleep(random.uniform(0, min(5.0, 0.05 * 2**attempt)))
    raise RuntimeError(f"{table}: items still unprocessed after {max_attempts} attempts")


def _batches(path: Path, start: int, report: LoadReport) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(line number after the batch, items) for the lines after `start`."""
    with path.open() as lines:
        for _ in islice(lines, start):
            pass
        number = start
        batch: dict[str, dict[str, Any]] = {}
        for line in lines:
            number += 1
            report.read += 1
            record = json.loads(line)
            key = json.dumps([record.get("book_id"), record.get("user_id")])
            batch[key] = to_item(record)  # one batch may not write the same key twice
            if len(batch) == BATCH:
                yield number, list(batch.values())
                batch = {}
        if batch:
            yield number, list(batch.values())


def load(client: Any, table: str, path: Path, writers: int = 8, checkpoint: Checkpoint | None = None,
         progress: Any = None) -> LoadReport:
    checkpoint = checkpoint or Checkpoint(None)
    report = LoadReport()
    start = checkpoint.read()
    report.skipped_from_checkpoint = start
    started = time.perf_counter()
    pending: dict[Future[None], int] = {}
    finished: set[int] = set()
    order: list[int] = []  # batch end lines in file order
    done_upto = start

    def advance() -> None:
        nonlocal done_upto
        while order and order[0] in finished:
            done_upto = order.pop(0)
            finished.discard(done_upto)
        checkpoint.write(done_upto)

    with ThreadPoolExecutor(max_workers=writers) as pool:
        for end_line, items in _batches(path, start, report):
            if len(pending) >= writers * 2:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
                    finished.add(pending.pop(future))
                advance()
            future = pool.submit(_write_batch, client, table, items, report)
            pending[future] = end_line
            order.append(end_line)
            report.written += len(items)
            if progress is not None:
                progress.update(len(items))
        for future in list(pending):
            future.result()
            finished.add(pending.pop(future))
        advance()
    report.seconds = time.perf_counter() - started
    checkpoint.clear()
    return report
