"""Reading recorded files: plain or gzip, bounded line length, 1-based line numbers, and a
bound on the work one compressed input can cause. Importers build on this so every reject
can name its file and line.

A truncated gzip member keeps everything decompressed before the cut: :func:`read_block`
returns the bytes read so far together with the error, and :func:`iter_lines` ends with
one error. A gzip input may expand to at most :data:`MAX_EXPANSION` times its compressed
size (plus :data:`EXPANSION_ALLOWANCE`) and hold at most one line per compressed byte (plus
:data:`LINE_ALLOWANCE`): real logs stay far below both (audit logs and canonical NDJSON
compress 10-25 fold, tens of compressed bytes a line), while a gzip bomb of newlines or
short junk lines would otherwise keep an importer busy for hours. Reading past a bound
raises :class:`ExpansionLimitError`, which the importers report like any unreadable data.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

from provarmor.model.errors import ParseError

MAX_LINE_BYTES = 1024 * 1024
"""Longer lines are rejected (and skipped) instead of being held in memory whole."""
MAX_EXPANSION = 100
"""A gzip input may decompress to this many times its compressed size (plus the allowance)."""
EXPANSION_ALLOWANCE = 64 * 1024 * 1024
LINE_ALLOWANCE = 1_000_000
"""Lines a gzip input may hold on top of one per compressed byte."""


class ExpansionLimitError(OSError):
    """A compressed input expanded past its bound (a decompression bomb, or not a log)."""


class BoundedGzipFile(gzip.GzipFile):
    """A gzip reader that raises :class:`ExpansionLimitError` once the decompressed bytes or
    lines pass the bounds set by the compressed size."""

    def __init__(self, path: Path) -> None:
        compressed = path.stat().st_size
        super().__init__(filename=str(path), mode="rb")
        self.max_bytes = MAX_EXPANSION * compressed + EXPANSION_ALLOWANCE
        self.max_lines = compressed + LINE_ALLOWANCE
        self.bytes_out = 0
        self.lines_out = 0

    def _count(self, data: bytes) -> bytes:
        self.bytes_out += len(data)
        self.lines_out += data.count(b"\n")
        if self.bytes_out > self.max_bytes or self.lines_out > self.max_lines:
            raise ExpansionLimitError(
                f"gzip data expands past {self.max_bytes:,} bytes or {self.max_lines:,} lines "
                f"({MAX_EXPANSION}x its compressed size, one line per compressed byte): the "
                "rest is refused as a likely decompression bomb"
            )
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._count(super().read(size))

    def read1(self, size: int = -1) -> bytes:
        return self._count(super().read1(size))

    def readline(self, size: int | None = -1) -> bytes:
        return self._count(super().readline(size))


class InputEnded(ParseError):
    """The input could not be read on (truncated, corrupt, past a bound): the last error
    :func:`iter_lines` gives, after which importers report the input as stopped."""


READ_ERRORS = (EOFError, OSError, zlib.error)
"""What reading a recorded file may raise: truncated or corrupt gzip, I/O errors, a bound."""


def open_binary(path: Path) -> io.BufferedIOBase:
    """Open ``path`` for reading, transparently gunzipping (with bounds) ``.gz`` files."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return BoundedGzipFile(path)
    return path.open("rb")


def read_block(handle: io.BufferedIOBase, size: int) -> tuple[bytes, OSError | None]:
    """Up to ``size`` bytes (fewer only at the end of the input), and the error that ended
    the input early, if one did. Bytes decompressed before a truncation are returned, never
    dropped with the exception (``GzipFile.read`` drops them; ``read1`` does not)."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        try:
            part = handle.read1(size - got)
        except READ_ERRORS as exc:
            error = exc if isinstance(exc, OSError) else OSError(str(exc))
            return b"".join(parts), error
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts), None


def iter_lines(
    handle: io.BufferedIOBase, *, source: str, errors: list[ParseError] | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` without the trailing newline.

    Over-long lines are skipped; each one is appended to ``errors`` (when given) as a
    :class:`ParseError` naming the line. A truncated gzip member (or an input past its
    bound) ends the stream with one :class:`InputEnded` error rather than an exception.
    """
    number = 0
    while True:
        try:
            line = handle.readline(MAX_LINE_BYTES + 1)
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                _skip_rest_of_line(handle)
        except READ_ERRORS as exc:
            if errors is not None:
                errors.append(
                    InputEnded(f"unreadable data: {exc}", location=f"{source}:{number + 1}")
                )
            return
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            if errors is not None:
                errors.append(
                    ParseError(
                        f"line longer than {MAX_LINE_BYTES} bytes", location=f"{source}:{number}"
                    )
                )
            continue
        yield number, line.rstrip(b"\r\n")


def _skip_rest_of_line(handle: io.BufferedIOBase) -> None:
    while True:
        rest = handle.readline(MAX_LINE_BYTES)
        if not rest or rest.endswith(b"\n"):
            return
