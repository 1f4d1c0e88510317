from __future__ import annotations

import pytest

from provarmor.model.errors import ParseError
from provarmor.sources.auditd.paths import (
    DirectoryCache,
    PathItem,
    PathItemCache,
    first_of,
    path_items,
    resolve,
)
from provarmor.sources.auditd.records import parse_audit_line


def _group(path, first, last):
    lines = path.read_text().split("\n")[first - 1 : last]
    return [parse_audit_line(line, line=n) for n, line in enumerate(lines, first)]


@pytest.mark.parametrize(
    ("name", "base", "expected"),
    [
        ("/etc/passwd", "/tmp", "/etc/passwd"),
        ("a.txt", "/tmp/pa-files", "/tmp/pa-files/a.txt"),
        ("../x/./y", "/tmp/a", "/tmp/x/y"),
        ("/tmp/x/", "", "/tmp/x"),
        ("//tmp//y", "", "//tmp/y"),
        ("rel", "", "rel"),
        ("/", "", "/"),
    ],
)
def test_resolve(name, base, expected):
    assert resolve(name, base=base) == expected


def test_rename_items_in_order(auditd_data):
    # file_ops.log: mv a.txt b.txt (renameat2), items PARENT PARENT DELETE CREATE
    records = _group(auditd_data / "file_ops.log", 242, 247)

    items = path_items(records)

    assert [item.nametype for item in items] == ["PARENT", "PARENT", "DELETE", "CREATE"]
    assert first_of(items, "DELETE").name == "a.txt"
    assert first_of(items, "CREATE").name == "b.txt"
    created = first_of(items, "CREATE")
    assert created.to_file("/tmp/pa-files/b.txt").type == "file"
    assert created.to_file("/tmp/pa-files/b.txt").mode == 0o600
    assert created.to_file("/x", mode=0o700).mode == 0o700


def test_item_cache_reuses_items_of_a_shared_fields_dict(auditd_data):
    records = _group(auditd_data / "file_ops.log", 242, 247)
    cache = PathItemCache()

    first = cache.items(records)
    again = cache.items(records)

    assert first == again
    assert all(a is b for a, b in zip(first, again, strict=True))


def test_bad_mode_raises_parse_error():
    record = parse_audit_line(
        'type=PATH msg=audit(1.000:1): item=0 name="/x" mode=0zz nametype=NORMAL'
    )

    with pytest.raises(ParseError) as info:
        path_items([record], source="a.log", line=4)
    assert info.value.location == "a.log:4"


def test_directory_cache_learns_directories_only():
    cache = DirectoryCache(capacity=1)
    directory = PathItem("/tmp/x", "NORMAL", "fe:00", 10, 0o40755)
    regular = PathItem("/tmp/x/f", "NORMAL", "fe:00", 11, 0o100644)

    cache.learn(directory, "/tmp/x")
    cache.learn(regular, "/tmp/x/f")

    assert cache.get(PathItem("/tmp", "PARENT", "fe:00", 10, 0o40755)) == "/tmp/x"
    assert cache.get(regular) == ""
    cache.learn(PathItem("/y", "NORMAL", "fe:00", 12, 0o40755), "/y")
    assert cache.get(directory) == ""  # capacity 1: the older entry went
