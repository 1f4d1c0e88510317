"""Download URLs pointed at the lab's local server, which serves the atomics' ``src/`` files.

Atomic Red Team tests fetch their payloads from GitHub
(``https://raw.githubusercontent.com/redcanaryco/atomic-red-team/master/atomics/T1059.004/src/echo-art-fish.sh``,
``https://github.com/redcanaryco/atomic-red-team/raw/master/atomics/...``). When the file
exists in the local copy (``atomics/T1059.004/src/echo-art-fish.sh``),
:func:`rewrite_downloads` replaces the URL with the same file on the local server
(``http://127.0.0.1:28080/T1059.004/src/echo-art-fish.sh``), which runs inside the test's
network namespace; any other non-loopback URL is reported as unserved and the test needs the
internet. :func:`stage` copies the served files where the server finds them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from provarmor.lab.containment import Containment, ContainmentError

SERVER_HOST = "127.0.0.1"
SERVER_PORT = 28080
"""The local server's port inside the test's own network namespace (nothing else is there)."""
BASE_URL = f"http://{SERVER_HOST}:{SERVER_PORT}"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>`|;&)]+")
"""A URL in a command line (the same reading as :mod:`provarmor.lab.containment`)."""
_SOURCE = re.compile(r"/atomics/(T\d{4}(?:\.\d{3})?)/src/([^?#]+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rewritten:
    text: str
    served: tuple[str, ...] = ()
    """Files the text now fetches from the local server (``T1059.004/src/x.sh``)."""
    unserved: tuple[str, ...] = ()
    """Non-loopback URLs with no local copy."""


def local_source(url: str, atomics: Path) -> str | None:
    """``T…/src/<file>`` when ``url`` names an atomics source file that exists under
    ``atomics``; None otherwise."""
    match = _SOURCE.search(url)
    if match is None:
        return None
    technique, relative = match.group(1), match.group(2).rstrip("/")
    if ".." in relative.split("/"):
        return None
    candidate = atomics / technique / "src" / relative
    return f"{technique}/src/{relative}" if candidate.is_file() else None


def _is_loopback(url: str, guard: Containment) -> bool:
    try:
        guard.check_url(url)
    except ContainmentError:
        return False
    return True


def rewrite_downloads(text: str, *, atomics: Path, base_url: str = BASE_URL) -> Rewritten:
    """``text`` with every URL that has a local copy pointed at ``base_url``."""
    guard = Containment()
    served: list[str] = []
    unserved: list[str] = []

    def replace(match: re.Match[str]) -> str:
        url = match.group(0)
        if _is_loopback(url, guard):
            return url
        source = local_source(url, atomics)
        if source is None:
            unserved.append(url)
            return url
        served.append(source)
        return f"{base_url}/{source}"

    rewritten = _URL.sub(replace, text)
    return Rewritten(
        text=rewritten,
        served=tuple(dict.fromkeys(served)),
        unserved=tuple(dict.fromkeys(unserved)),
    )


def stage(sources: Iterable[str], *, atomics: Path, www: Path) -> list[Path]:
    """Copy each served ``T…/src/<file>`` from ``atomics`` into ``www``; returns the copies."""
    copies = []
    for source in sources:
        technique, _, relative = source.partition("/src/")
        origin = atomics / technique / "src" / relative
        target = www / source
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, target)
        copies.append(target)
    return copies
