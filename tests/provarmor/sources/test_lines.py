import gzip
import io

from provarmor.model.errors import ParseError
from provarmor.sources import lines
from provarmor.sources.lines import iter_lines, open_binary


def test_lines_are_numbered_and_stripped():
    data = io.BytesIO(b"a\r\nb\n\nc")
    assert list(iter_lines(data, source="s")) == [(1, b"a"), (2, b"b"), (3, b""), (4, b"c")]


def test_overlong_line_is_skipped_with_location(monkeypatch):
    monkeypatch.setattr(lines, "MAX_LINE_BYTES", 8)
    errors: list[ParseError] = []
    data = io.BytesIO(b"ok\n" + b"x" * 30 + b"\nfine\n")
    assert list(iter_lines(data, source="f", errors=errors)) == [(1, b"ok"), (3, b"fine")]
    assert [e.location for e in errors] == ["f:2"]


def test_gzip_is_read_transparently_and_truncation_reported(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"one\ntwo\n" * 1000)[:-20])
    errors: list[ParseError] = []
    with open_binary(path) as handle:
        got = list(iter_lines(handle, source=str(path), errors=errors))
    assert got[0] == (1, b"one")
    assert len(errors) == 1


def test_read_block_returns_what_came_before_a_truncation(tmp_path):
    body = b"".join(b"%08d\n" % i for i in range(200_000))
    path = tmp_path / "cut.gz"
    compressed = gzip.compress(body)
    path.write_bytes(compressed[: len(compressed) // 2])
    with open_binary(path) as handle:
        data, error = lines.read_block(handle, 64 << 20)
    assert isinstance(error, EOFError | OSError)
    assert len(data) > len(body) // 3
    assert body.startswith(data)


def test_gzip_past_its_expansion_bound_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(lines, "EXPANSION_ALLOWANCE", 0)
    monkeypatch.setattr(lines, "LINE_ALLOWANCE", 0)
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(b"\n" * (8 << 20)))
    with open_binary(path) as handle:
        data, error = lines.read_block(handle, 64 << 20)
    assert isinstance(error, lines.ExpansionLimitError)
    assert "decompression bomb" in str(error)
    assert len(data) <= path.stat().st_size * lines.MAX_EXPANSION
