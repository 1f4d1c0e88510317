"""What the CLI writes to a terminal: host data made printable, then markup-escaped.

Every command passes data it prints (paths, command lines, names, messages quoting input)
through :func:`escape` instead of Rich's own, so neither Rich markup nor terminal control
sequences in that data take effect. JSON output does not go through it.
"""

from __future__ import annotations

from rich.markup import escape as escape_markup

from provarmor.model.display import printable


def escape(text: str) -> str:
    """``text`` safe to print with Rich: control characters shown as escapes
    (:func:`~provarmor.model.display.printable`), markup brackets escaped."""
    return escape_markup(printable(text))
