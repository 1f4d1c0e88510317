"""Text from monitored hosts made safe to show on a terminal (and in Graphviz DOT).

Paths, command lines and names come from the hosts being watched, so an attacker chooses
them. Written raw to an analyst's terminal, an ESC sequence can rewrite the screen, retitle
the window or hide lines, and a bidi override can make a name read differently from what it
is. :func:`printable` is the one place that neutralises them; every human-facing output
(tables, trace trees, DOT, incident panels, error messages) passes data through it on the
way out. JSON outputs are not passed through it: JSON's own escaping keeps them exact.
"""

from __future__ import annotations

import unicodedata

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Control (C0, C1, DEL), format (bidi overrides and isolates, zero-width characters),
lone surrogates (undecodable bytes), private use, unassigned, line/paragraph separators."""


def _escaped(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every control, format, separator, surrogate, private-use or unassigned
    character replaced by a visible Python-style escape (``\\x1b``, ``\\u202e``). Text
    without such characters (nearly all) is returned as it is. Backslashes are left alone,
    so ordinary text reads unchanged; a literal ``\\x1b`` in a name and an escaped ESC look
    alike, but neither acts on the terminal."""
    if text.isprintable():
        return text
    return "".join(
        _escaped(char) if unicodedata.category(char) in UNSAFE_CATEGORIES else char for char in text
    )


def dot_quote(text: str) -> str:
    """``text`` as a Graphviz quoted string: made printable, then backslashes and quotes
    escaped, so a hostile label can neither end the string nor reach a terminal raw."""
    return '"' + printable(text).replace("\\", "\\\\").replace('"', '\\"') + '"'
