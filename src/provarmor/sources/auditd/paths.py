"""PATH records of one event: which item is the file the syscall acted on, and its absolute
path.

The kernel writes one PATH record per name the syscall looked up, with ``nametype``
NORMAL, PARENT (the directory holding a name being created or deleted), CREATE, DELETE or
UNKNOWN (a name given but not looked up, such as a symlink's target). ``name`` is the name as
the program gave it, so relative names are resolved here against the directory descriptor
the call used, or the working directory from the CWD record.
"""

from __future__ import annotations

import posixpath
from typing import NamedTuple

from provarmor.model.errors import ParseError
from provarmor.model.event import File
from provarmor.sources.auditd.records import AuditRecord

_FILE_TYPES: dict[int, str] = {
    0o100000: "file",
    0o040000: "dir",
    0o120000: "symlink",
    0o010000: "pipe",
    0o140000: "socket",
    0o020000: "char_device",
    0o060000: "block_device",
}


class PathItem(NamedTuple):
    """One PATH record."""

    name: str
    nametype: str
    dev: str = ""
    inode: int | None = None
    mode: int | None = None
    """The full ``st_mode`` (type and permission bits) before the syscall."""
    uid: str = ""
    gid: str = ""

    def to_file(self, path: str, *, original_path: str = "", mode: int | None = None) -> File:
        """The canonical file for this item at ``path`` (``mode`` overrides the recorded
        permission bits, e.g. the new mode of a chmod)."""
        file_type = _FILE_TYPES.get(self.mode & 0o170000, "") if self.mode is not None else ""
        bits = self.mode & 0o7777 if self.mode is not None else None
        return File(
            path=path,
            original_path=original_path,
            type=file_type,
            mode=mode if mode is not None else bits,
            inode=self.inode,
            uid=self.uid,
            gid=self.gid,
        )


class PathItemCache:
    """PATH records whose text recurs share one fields dict (the parser's cache); this
    keeps the :class:`PathItem` built from each such dict, so it is built once. Keyed by the
    dict's identity; each entry holds its dict, so the identity cannot be reused while the
    entry lives. Bounded: cleared when full."""

    def __init__(self, *, capacity: int = 16384) -> None:
        self._items: dict[int, tuple[dict[str, str], int, PathItem]] = {}
        self._capacity = capacity

    def items(
        self, records: list[AuditRecord], *, source: str = "", line: int = 0
    ) -> list[PathItem]:
        """The PATH records of a group, in item order."""
        numbered: list[tuple[int, PathItem]] = []
        cache = self._items
        for record in records:
            if record.type != "PATH":
                continue
            fields = record.fields
            entry = cache.get(id(fields))
            if entry is None or entry[0] is not fields:
                number, item = _numbered_item(fields, len(numbered), source, line)
                entry = (fields, number, item)
                if len(cache) >= self._capacity:
                    cache.clear()
                cache[id(fields)] = entry
            numbered.append((entry[1], entry[2]))
        if len(numbered) > 1:
            numbered.sort(key=_item_number)
        return [item for _, item in numbered]


def path_items(records: list[AuditRecord], *, source: str = "", line: int = 0) -> list[PathItem]:
    """The PATH records of a group, in item order (without a cache)."""
    return PathItemCache().items(records, source=source, line=line)


def _numbered_item(
    fields: dict[str, str], default: int, source: str, line: int
) -> tuple[int, PathItem]:
    try:
        inode = fields.get("inode")
        mode = fields.get("mode")
        item = PathItem(
            fields.get("name", ""),
            fields.get("nametype", "UNKNOWN"),
            fields.get("dev", ""),
            int(inode) if inode is not None else None,
            int(mode, 8) if mode is not None else None,
            fields.get("ouid", ""),
            fields.get("ogid", ""),
        )
        return int(fields.get("item", default)), item
    except ValueError:
        location = f"{source}:{line}" if line else source
        raise ParseError("PATH record with a bad item, inode or mode", location=location) from None


def _item_number(pair: tuple[int, PathItem]) -> int:
    return pair[0]


class DirectoryCache:
    """Directory (device, inode) -> absolute path, learnt from opens of directories.

    PATH records of calls made relative to a directory descriptor give only the name and,
    in the PARENT item, the directory's inode; this resolves such names when the directory
    was opened earlier (``rm -rf`` and ``find`` work this way). Bounded, oldest first out.
    """

    def __init__(self, *, capacity: int = 4096) -> None:
        self._paths: dict[tuple[str, int], str] = {}
        self._capacity = capacity

    def learn(self, item: PathItem, path: str) -> None:
        if item.inode is None or item.mode is None or item.mode & 0o170000 != 0o040000:
            return
        if not path.startswith("/"):
            return
        key = (item.dev, item.inode)
        self._paths.pop(key, None)
        self._paths[key] = path
        if len(self._paths) > self._capacity:
            del self._paths[next(iter(self._paths))]

    def get(self, item: PathItem | None) -> str:
        if item is None or item.inode is None:
            return ""
        return self._paths.get((item.dev, item.inode), "")


def first_of(items: list[PathItem], *nametypes: str) -> PathItem | None:
    """The first item whose nametype is one of ``nametypes``."""
    for item in items:
        if item.nametype in nametypes:
            return item
    return None


def resolve(name: str, *, base: str) -> str:
    """``name`` made absolute against directory ``base`` (left relative when ``base`` is
    unknown), with ``.``, ``..`` and doubled slashes folded."""
    if not name.startswith("/"):
        if not base:
            return name
        name = f"{base}/{name}"
    if "/." in name or "//" in name or (name.endswith("/") and len(name) > 1):
        return posixpath.normpath(name)
    return name
