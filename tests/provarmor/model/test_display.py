import sys
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from provarmor.model.display import UNSAFE_CATEGORIES, printable


def test_plain_text_is_unchanged():
    for text in ("/usr/bin/curl -s http://x/a.sh | bash", "élève 日本 🙂", "a\\x1b", ""):
        assert printable(text) == text


def test_terminal_controls_and_bidi_overrides_become_visible_escapes():
    hostile = "/tmp/\x1b]0;owned\x07\x1b[2J\r\n\x9b31m\u202eexe.txt\u2066\x00\ud800"
    assert printable(hostile) == (
        "/tmp/\\x1b]0;owned\\x07\\x1b[2J\\x0d\\x0a\\x9b31m\\u202eexe.txt\\u2066\\x00\\ud800"
    )


def test_every_unsafe_code_point_is_escaped():
    unsafe = [
        chr(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in UNSAFE_CATEGORIES
    ]
    shown = printable("".join(unsafe))
    assert all(ord(char) < 0x7F and char.isprintable() for char in shown)
    assert shown.count("\\") == len(unsafe)


@given(st.text())
def test_output_never_holds_an_unsafe_character(text):
    assert not any(unicodedata.category(char) in UNSAFE_CATEGORIES for char in printable(text))
