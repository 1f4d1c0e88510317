"""Well-known noise for causality tracking: files every process touches that carry no
attack-relevant information flow (shared libraries, locale data, /proc, /dev/null ...).

Filters are plain data so users can extend them from configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.graph.records import Node, NodeKind

DEFAULT_PREFIXES: tuple[str, ...] = (
    "/proc/",
    "/sys/",
    "/dev/null",
    "/dev/zero",
    "/dev/urandom",
    "/dev/random",
    "/dev/tty",
    "/dev/pts/",
    "/usr/lib/locale/",
    "/usr/share/locale/",
    "/usr/share/zoneinfo/",
    "/usr/lib/x86_64-linux-gnu/gconv/",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/usr/share/terminfo/",
    "/lib/terminfo/",
)
"""Deliberately absent: ``/etc/ld.so.preload``, ``/etc/passwd``, ``/etc/hosts`` and other
files an attacker changes; trace hides them only when nothing wrote them (leaf files)."""

SHARED_LIBRARY_MARKERS: tuple[str, ...] = (".so", ".so.")
LIBRARY_DIRECTORIES: tuple[str, ...] = (
    "/lib/",
    "/lib64/",
    "/usr/lib/",
    "/usr/lib64/",
    "/usr/local/lib/",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NoiseFilter:
    prefixes: tuple[str, ...] = DEFAULT_PREFIXES
    hide_shared_libraries: bool = True

    def is_noise(self, node: Node) -> bool:
        """Whether a file node is well-known noise (never a process or an endpoint)."""
        if node.kind is not NodeKind.FILE:
            return False
        path = node.path or node.label
        if path.startswith(self.prefixes):
            return True
        if self.hide_shared_libraries and path.startswith(LIBRARY_DIRECTORIES):
            name = path.rsplit("/", 1)[-1]
            return name.endswith(".so") or ".so." in name
        return False


NO_FILTER = NoiseFilter(prefixes=(), hide_shared_libraries=False)
