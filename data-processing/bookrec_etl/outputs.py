"""Output files written whole or not at all.

Each output is written under a temporary name in its own directory (so the final rename stays on one
file system and is atomic) and renamed onto its real name only when the step succeeds: an existing
output is never destroyed by a failed run and never left half-written. A killed run leaves at most a
hidden `.<name>.<pid>.<random>.tmp` beside it.

No output of a step may be one of its inputs (after symlinks, relative paths and hard links) or another
of its outputs: refuse_clashes says which before anything is opened.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

WRITE_BUFFER = 1 << 20


class AtomicFile:
    """A binary file written beside `path` under a temporary name; commit() renames it onto `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        # os.open with 0o666 lets the umask decide the mode, as a plain open() would.
        descriptor = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self.file: IO[bytes] = os.fdopen(descriptor, "wb", buffering=WRITE_BUFFER)

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())  # the data is on disk before the name points at it
        self.file.close()
        os.replace(self.temp, self.path)

    def discard(self) -> None:
        self.file.close()
        self.temp.unlink(missing_ok=True)


@contextmanager
def atomic_outputs(*paths: Path) -> Iterator[list[IO[bytes]]]:
    """Binary files for `paths`, all renamed into place together when the block succeeds, none otherwise."""
    files: list[AtomicFile] = []
    try:
        for path in paths:
            files.append(AtomicFile(path))
        yield [f.file for f in files]
    except BaseException:
        for f in files:
            f.discard()
        raise
    for f in files:
        f.commit()


class OutputClash(ValueError):
    """An output would be written over an input, or two outputs are one file: nothing is written."""


def _same_file(a: Path, b: Path) -> bool:
    """One file under two names: the same path once symlinks and relative parts are resolved, or (both
    existing) the same inode, as a hard link is."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): no hard link either
        return False


def refuse_clashes(inputs: Mapping[str, Path], outputs: Mapping[str, Path]) -> None:
    """OutputClash naming the first output (by what names it, e.g. "--rejects") that is one of the inputs or
    another output; checked before anything is opened, so nothing is written or deleted."""
    named = list(outputs.items())
    for n, (what, path) in enumerate(named):
        for source, given in inputs.items():
            if _same_file(path, given):
                raise OutputClash(f"{what} {path} is the input {source} {given}: refusing to write over "
                                  "an input; nothing was written")
        for other, other_path in named[n + 1:]:
            if _same_file(path, other_path):
                raise OutputClash(f"{what} {path} and {other} {other_path} are the same file; nothing was "
                                  "written")
