"""Input files, plain or gzip, read as a stream of lines with how far into the file the reader is.

A broken compressed stream (truncated, not gzip at all, corrupt) surfaces as one BrokenInput naming
the file and where it broke, never as gzip's own errors: EOFError in particular would otherwise be
taken for Ctrl-D by click, which prints only "Aborted!".
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

READ_BUFFER = 1 << 20


class BrokenInput(Exception):
    """A compressed input that cannot be read to its end; `lines` complete lines were read before it broke."""

    def __init__(self, path: Path, why: str, lines: int | None = None, unpacked: int = 0) -> None:
        self.path, self.why, self.lines, self.unpacked = path, why, lines, unpacked
        super().__init__(str(self))

    def at_line(self, lines: int) -> BrokenInput:
        return BrokenInput(self.path, self.why, lines, self.unpacked)

    def __str__(self) -> str:
        if self.lines == 0 or (self.lines is None and not self.unpacked):
            where = "at its start"
        elif self.lines is None:
            where = f"after {self.unpacked:,} bytes"
        else:
            unpacked = f" ({self.unpacked:,} bytes uncompressed)" if self.unpacked else ""
            where = f"after line {self.lines:,}{unpacked}"
        return f"{self.path} is broken {where}: {self.why}"


def _why(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "the compressed data ends before the gzip end-of-stream marker (a truncated file?)"
    if isinstance(exc, gzip.BadGzipFile):
        return f"not valid gzip data ({exc})"
    return f"corrupt compressed data ({exc})"


class _CheckedGzip(io.RawIOBase):
    """A gzip file's uncompressed bytes; gzip's and zlib's errors become BrokenInput. Closes `raw`."""

    def __init__(self, path: Path, raw: IO[bytes]) -> None:
        super().__init__()
        self.path = path
        self.unpacked = 0
        self._raw = raw
        self._gzip = gzip.GzipFile(fileobj=raw)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        # read1: what one chunk of compressed data gives, so that the lines before a break are still read.
        try:
            data = self._gzip.read1(len(buffer))
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise BrokenInput(self.path, _why(exc), unpacked=self.unpacked) from None
        count = len(data)
        buffer[:count] = data
        self.unpacked += count
        return count

    def close(self) -> None:
        self._gzip.close()
        self._raw.close()
        super().close()


class LineSource:
    """Lines of a file as bytes; `position`: bytes of the file on disk read so far (compressed for .gz)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._raw = path.open("rb", buffering=READ_BUFFER)
        self._stream: IO[bytes] = self._raw
        self._compressed = path.name.endswith(".gz")
        if self._compressed:
            self._stream = io.BufferedReader(_CheckedGzip(path, self._raw), READ_BUFFER)

    @property
    def position(self) -> int:
        return self._raw.tell()

    def __iter__(self) -> Iterator[bytes]:
        return self._counted() if self._compressed else iter(self._stream)

    def _counted(self) -> Iterator[bytes]:
        """The lines, counted so that a break can say after which line it happened."""
        number = 0
        try:
            for number, line in enumerate(self._stream, start=1):  # noqa: B007 - number is read in the handler
                yield line
        except BrokenInput as exc:
            raise exc.at_line(number) from None

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    def __enter__(self) -> LineSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Utf8Lines:
    """Text lines for CSV readers (line endings kept, as csv wants them), decoded one at a time so that
    bytes which are not UTF-8 are a BrokenInput naming their line, never a traceback."""

    def __init__(self, path: Path, stream: IO[bytes]) -> None:
        self.path, self._stream, self._lines = path, stream, 0

    def __iter__(self) -> _Utf8Lines:
        return self

    def __next__(self) -> str:
        raw = self._stream.readline()
        if not raw:
            raise StopIteration
        self._lines += 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BrokenInput(self.path, f"line {self._lines} is not UTF-8 text ({exc.reason})",
                              lines=self._lines - 1) from None

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> _Utf8Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_text(path: Path) -> _Utf8Lines:
    """A text stream for CSV readers; a broken .gz or text that is not UTF-8 raises BrokenInput."""
    raw = path.open("rb", buffering=READ_BUFFER)
    if path.name.endswith(".gz"):
        return _Utf8Lines(path, io.BufferedReader(_CheckedGzip(path, raw), READ_BUFFER))
    return _Utf8Lines(path, raw)
