"""Input-argument substitution: the command text a test would run, with its defaults filled in.

Atomic Red Team writes ``#{name}`` where an input argument goes and ``PathToAtomicsFolder``
(also ``$PathToAtomicsFolder``) where the atomics folder is. :func:`argument_values` takes
each argument's default, moving paths that point into ``/tmp`` or ``/var/tmp`` under the
test's scratch directory (and the conventional ``/tmp/AtomicRedTeam/atomics`` checkout onto
the test's private copy of the atomics), so a test never writes outside its own area through
an argument. :func:`substitute` fills them in, case-insensitively as Invoke-AtomicTest does,
and :func:`unresolved` names any ``#{...}`` left over. Everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from provarmor.lab.atomics.model import AtomicTest

_PLACEHOLDER = re.compile(r"#\{([A-Za-z0-9_\-]+)\}")
_ATOMICS_WORD = re.compile(r"\$\{PathToAtomicsFolder\}|\$PathToAtomicsFolder|PathToAtomicsFolder")
_CHECKOUT = "/tmp/AtomicRedTeam/atomics"  # noqa: S108  (names of places, not temporary files)
_TEMPORARY = ("/var/tmp", "/tmp")  # noqa: S108  (names of places, not temporary files)
_ROUNDS = 3
"""Defaults may name other arguments (``#{a}`` inside ``b``'s default): fill in this often."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    """Where one test's files live (host paths)."""

    scratch: str
    """The test's own directory; removed after the test."""
    atomics: str
    """Stands in for ``PathToAtomicsFolder``: a private copy of the test's technique folder."""

    @property
    def temporary(self) -> str:
        """Where ``/tmp`` paths of arguments go (the sandbox also mounts it on ``/tmp``)."""
        return f"{self.scratch}/tmp"  # noqa: S108  (inside the scratch directory)

    @property
    def variable_temporary(self) -> str:
        """Where ``/var/tmp`` paths go (mounted on ``/var/tmp`` in the sandbox)."""
        return f"{self.scratch}/vartmp"

    @property
    def home(self) -> str:
        """The test's home directory (mounted on ``/root`` in the sandbox)."""
        return f"{self.scratch}/home"


def _under(path: str, prefix: str) -> str | None:
    """The rest of ``path`` after ``prefix`` ('' for the prefix itself), or None."""
    if path == prefix:
        return ""
    if path.startswith(prefix + "/"):
        return path[len(prefix) :]
    return None


def relocate_path(value: str, workspace: Workspace) -> str:
    """``value`` moved into ``workspace`` when it points into /tmp or /var/tmp."""
    text = value.strip()
    rest = _under(text, _CHECKOUT)
    if rest is not None:
        return workspace.atomics + rest
    for prefix, target in zip(
        _TEMPORARY, (workspace.variable_temporary, workspace.temporary), strict=True
    ):
        rest = _under(text, prefix)
        if rest is not None:
            return target + rest
    return value


def argument_values(test: AtomicTest, *, workspace: Workspace) -> dict[str, str]:
    """Each input argument's value: its default, relocated when it is a temporary path."""
    return {
        argument.name: relocate_path(argument.default, workspace) for argument in test.arguments
    }


def substitute(text: str, values: Mapping[str, str], *, atomics: str) -> str:
    """``text`` with ``#{name}`` replaced by ``values`` (names match case-insensitively) and
    ``PathToAtomicsFolder`` by ``atomics``; unknown placeholders are left as they are."""
    lowered = {name.lower(): value for name, value in values.items()}

    def fill(match: re.Match[str]) -> str:
        return lowered.get(match.group(1).lower(), match.group(0))

    for _ in range(_ROUNDS):
        filled = _PLACEHOLDER.sub(fill, text)
        if filled == text:
            break
        text = filled
    return _ATOMICS_WORD.sub(lambda _: atomics, text)


def unresolved(text: str) -> list[str]:
    """The ``#{name}`` placeholders still in ``text``."""
    return sorted({match.group(0) for match in _PLACEHOLDER.finditer(text)})
