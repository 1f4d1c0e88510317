import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.lab.atomics.shellwords import ShellSyntaxError, split_commands


def _words(text):
    return [command.words for command in split_commands(text)]


def test_commands_are_split_on_operators_and_newlines():
    assert _words("a 1; b 2 && c | d\ne || f & g") == [
        ("a", "1"),
        ("b", "2"),
        ("c",),
        ("d",),
        ("e",),
        ("f",),
        ("g",),
    ]


def test_quotes_are_removed_and_their_contents_kept_whole():
    assert _words("""echo 'a b' "c $d" e\\ f""") == [("echo", "a b", "c $d", "e f")]


def test_redirection_targets_are_writes_and_fd_numbers_are_not_words():
    (command,) = split_commands("cat a 2>/dev/null >> '/tmp/b c' 2>&1 < in")
    assert command.words == ("cat", "a")
    assert command.writes == ("/dev/null", "/tmp/b c")
    (zero,) = split_commands("echo 0> /var/log/secure")
    assert zero.words == ("echo",) and zero.writes == ("/var/log/secure",)


def test_comments_are_dropped_but_quoted_hashes_are_words():
    commands = split_commands("echo '#!/bin/sh' > /tmp/x # rm -rf /\n# whole line\nls")
    assert [c.words for c in commands] == [("echo", "#!/bin/sh"), ("ls",)]
    assert commands[0].writes == ("/tmp/x",)


def test_command_substitutions_are_split_too():
    words = _words('kill $(pgrep cron); echo "a $(id -u) b" `whoami`')
    assert ("kill", "$(pgrep cron)") in words
    assert ("pgrep", "cron") in words and ("id", "-u") in words and ("whoami",) in words


def test_quotes_inside_a_substitution_inside_quotes():
    words = _words('if [ "$(basename "$file")" != copy ]; then rm -rf /x; fi')
    assert ("rm", "-rf", "/x") in words and ("basename", "$file") in words


def test_here_document_bodies_are_not_commands():
    words = _words("cat <<EOF > /tmp/f\nrm -rf /\nEOF\nls")
    assert words == [("cat",), ("ls",)]


def test_assignments_and_loop_headers_are_not_command_names():
    commands = split_commands("X=1 Y=2 env; for f in a b; do rm $f; done")
    assert commands[0].assignments == ("X=1", "Y=2") and commands[0].words == ("env",)
    assert [c.words for c in commands[1:]] == [("rm", "$f")]


@pytest.mark.parametrize("text", ["echo 'open", 'echo "open', "echo $(open", "echo `open"])
def test_unclosed_quotes_raise(text):
    with pytest.raises(ShellSyntaxError):
        split_commands(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab $()'\"`\\;|&<>#{}\n=-/")), max_size=60))
def test_any_text_splits_or_raises_shell_syntax_error(text):
    with contextlib.suppress(ShellSyntaxError):
        split_commands(text)
