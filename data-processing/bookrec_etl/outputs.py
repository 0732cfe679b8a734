"""Output files written whole or not at all.

Each output is written under a temporary name in its own directory (so the final rename stays on one
file system and is atomic) and renamed onto its real name only when the step succeeds: an existing
output is never destroyed by a failed run and never left half-written. A killed run leaves at most a
hidden `.<name>.<pid>.<random>.tmp` beside it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
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
