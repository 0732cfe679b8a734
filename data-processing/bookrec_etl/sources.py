"""Input files, plain or gzip, read as a stream of lines with how far into the file the reader is."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

READ_BUFFER = 1 << 20


class LineSource:
    """Lines of a file as bytes; `position`: bytes of the file on disk read so far (compressed for .gz)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._raw = path.open("rb", buffering=READ_BUFFER)
        self._stream: IO[bytes] = self._raw
        if path.name.endswith(".gz"):
            unpacked = gzip.GzipFile(fileobj=self._raw)
            self._stream = io.BufferedReader(unpacked, READ_BUFFER)  # type: ignore[arg-type]

    @property
    def position(self) -> int:
        return self._raw.tell()

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._stream)

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    def __enter__(self) -> LineSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_text(path: Path) -> IO[str]:
    """A text stream for CSV readers (newline="" as the csv module wants)."""
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")
