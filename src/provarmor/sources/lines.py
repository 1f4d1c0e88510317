"""Line-oriented reading of recorded files: plain or gzip, bounded line length, 1-based line
numbers. Importers build on this so every reject can name its file and line."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from provarmor.model.errors import ParseError

MAX_LINE_BYTES = 1024 * 1024
"""Longer lines are rejected (and skipped) instead of being held in memory whole."""


def open_binary(path: Path) -> BinaryIO:
    """Open ``path`` for reading, transparently gunzipping ``.gz`` files."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def iter_lines(
    handle: BinaryIO, *, source: str, errors: list[ParseError] | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` without the trailing newline.

    Over-long lines are skipped; each one is appended to ``errors`` (when given) as a
    :class:`ParseError` naming the line. A truncated gzip member ends the stream with one
    error rather than an exception.
    """
    number = 0
    while True:
        try:
            line = handle.readline(MAX_LINE_BYTES + 1)
        except (EOFError, OSError, gzip.BadGzipFile) as exc:
            if errors is not None:
                errors.append(
                    ParseError(f"unreadable data: {exc}", location=f"{source}:{number + 1}")
                )
            return
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            # Consume the rest of the over-long line.
            while True:
                rest = handle.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            if errors is not None:
                errors.append(
                    ParseError(
                        f"line longer than {MAX_LINE_BYTES} bytes", location=f"{source}:{number}"
                    )
                )
            continue
        yield number, line.rstrip(b"\r\n")
