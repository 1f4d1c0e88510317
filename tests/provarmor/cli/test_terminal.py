"""Host data printed through :func:`escape` shows control characters as escapes and keeps
Rich markup in the data from taking effect; ordinary text is printed unchanged."""

import io

import pytest
from rich.console import Console

from provarmor.cli.terminal import escape


def _printed(text: str) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=400, color_system="truecolor", force_terminal=True).print(
        text, highlight=False
    )
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        ("/usr/bin/curl -s http://127.0.0.1/x", "/usr/bin/curl -s http://127.0.0.1/x"),
        ("/tmp/\x1b[2Jclear", "/tmp/\\x1b[2Jclear"),
        ("invoice\u202etxt.exe", "invoice\\u202etxt.exe"),
        ("bell\x07\r", "bell\\x07\\x0d"),
        ("[bold red]not markup[/bold red]", "[bold red]not markup[/bold red]"),
        ("C:\\path [x]", "C:\\path [x]"),
    ],
)
def test_host_data_prints_as_its_visible_text(data, shown):
    printed = _printed(escape(data))
    assert printed == shown + "\n"
    assert "\x1b[1m" not in printed  # no style took effect


def test_markup_of_the_caller_still_applies_around_escaped_data():
    printed = _printed(f"[bold]{escape('[/bold]x')}[/bold]")
    assert printed.startswith("\x1b[1m") and "[/bold]x" in printed
