"""Extract on two cores: the editions pass, and half of the write pass, each in a helper process.

The passes read different dumps into different tables, so the editions dump (the largest) is read by a
helper into a workspace of its own while the main process reads the authors, works and ratings dumps;
its rows are then copied into the main workspace in their order. The write pass joins works in id order:
a helper writes the second half of the ids to a part file while the main process writes the first half,
and the part is appended. Output and rejects are byte for byte those of one process: the rejects of a
pass run beside another are kept in a file of their own and appended where one process would have
written them.

A helper is `python -m bookrec_etl.extract_helper JOB`: a fresh interpreter that inherits nothing of
the main process (threads, locks, open files) and, unlike multiprocessing's spawn, never runs the
caller's main module again. The job (a function of this module and its arguments) goes in a pickle
file; the result, or the error that stopped the helper, comes back in another; its progress (lines read,
books written) in a shared 16-byte map the main process's bar reads.
"""

from __future__ import annotations

import logging
import mmap
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bookrec_etl.progress import Progress
from bookrec_etl.report import Report
from bookrec_etl.sources import BrokenInput

ASIDE_MIN_BYTES = 16 << 20  # a smaller editions dump is read faster than a helper starts (~0.3 s)
SPLIT_MIN_WORKS = 100_000
COUNTS = struct.Struct("<qq")  # a helper's progress: read, written
log = logging.getLogger("bookrec.etl")


class HelperFailed(RuntimeError):
    """A helper process ended without a result (killed, out of memory)."""


def cores(processes: int | None) -> int:
    """How many processes extract uses: as asked, else two when the machine has two cores or more."""
    if processes is not None:
        return processes
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def reads_aside(editions: Path, processes: int | None) -> bool:
    """Whether a helper reads the editions dump (a file of its own) beside the other passes."""
    return cores(processes) >= 2 and (processes is not None or editions.stat().st_size >= ASIDE_MIN_BYTES)


def splits(works: int, processes: int | None) -> bool:
    """Whether a helper writes half of the books."""
    return cores(processes) >= 2 and (processes is not None or works >= SPLIT_MIN_WORKS)


class Helper:
    """One helper process running `target(counter, *args)`; `counter` holds its progress (read, written)."""

    def __init__(self, directory: Path, name: str, target: Callable[..., Any], *args: Any) -> None:
        self.name = name
        self.job, self.result_path = directory / f"{name}.job", directory / f"{name}.result"
        counts = directory / f"{name}.progress"
        counts.write_bytes(bytes(COUNTS.size))
        with counts.open("r+b") as shared:
            self._counts = mmap.mmap(shared.fileno(), COUNTS.size)
        level = logging.getLogger("bookrec.etl").getEffectiveLevel()
        self.job.write_bytes(pickle.dumps((target, counts, level, args)))  # the function by its name
        # The helper imports this very package, wherever it was imported from (installed or not).
        here = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH"))))
        self.process = subprocess.Popen([sys.executable, "-m", "bookrec_etl.extract_helper", str(self.job)],
                                        env={**os.environ, "PYTHONPATH": path})

    @property
    def progress(self) -> tuple[int, int]:
        read, written = COUNTS.unpack_from(self._counts)
        return read, written

    def result(self, waiting: Callable[[], None] | None = None) -> Any:
        """Wait for the helper (calling `waiting` every half second) and return its result or raise its error."""
        while True:
            try:
                self.process.wait(0.5)
                break
            except subprocess.TimeoutExpired:
                if waiting is not None:
                    waiting()
        if not self.result_path.exists():
            raise HelperFailed(f"the extract helper process ({self.name}) ended without a result "
                               f"(exit code {self.process.returncode})")
        outcome = pickle.loads(self.result_path.read_bytes())
        if isinstance(outcome, _Broken):
            raise BrokenInput(outcome.path, outcome.why, outcome.lines, outcome.unpacked)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait()
        self._counts.close()


class _Broken:
    """A BrokenInput as data (its constructor takes more than the message, so it does not pickle itself)."""

    def __init__(self, exc: BrokenInput) -> None:
        self.path, self.why, self.lines, self.unpacked = exc.path, exc.why, exc.lines, exc.unpacked


def run(job: Path) -> None:
    """The helper's side: run the job, leave its result (or error) beside it."""
    target, counts, level, args = pickle.loads(job.read_bytes())  # imports the job's module
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    outcome: Any
    with counts.open("r+b") as shared, mmap.mmap(shared.fileno(), COUNTS.size) as counter:
        try:
            outcome = target(counter, *args)
        except BrokenInput as exc:
            outcome = _Broken(exc)
        except Exception as exc:  # noqa: BLE001 - handed to the main process, which raises it
            outcome = exc
    try:
        data = pickle.dumps(outcome)
    except Exception:  # noqa: BLE001 - an error that does not pickle still travels as its message
        data = pickle.dumps(RuntimeError(f"{type(outcome).__name__}: {outcome}"))
    result = job.with_suffix(".result")
    temporary = result.with_name(result.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(result)  # whole or absent: the main process never reads half a result


class Counting(Progress):
    """A progress for `_emit` in a helper: its counts go to the main process's bar."""

    def __init__(self, counter: Any) -> None:  # no bar and no log line of its own: Progress.__init__ not called
        self.counter = counter

    def __enter__(self) -> Counting:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def advance(self, done: int = 0, records: int = 0, *, absolute: bool = False) -> None:
        COUNTS.pack_into(self.counter, 0, done, records)


def merge(report: Report, other: Report) -> None:
    """Add the counts of the other half of a pass."""
    report.read += other.read
    report.accepted += other.accepted
    report.written += other.written
    report.rejected.update(other.rejected)
    report.skipped.update(other.skipped)
    report.notes.update(other.notes)
