import pytest

from provarmor.lab.atomics.wrappers import nested_script, positionals_after, unwrap


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["sudo", "-u", "art", "rm", "x"], ["rm", "x"]),
        (["env", "-i", "A=1", "B=2", "ls"], ["ls"]),
        (["timeout", "--preserve-status", "1", "whois", "h"], ["whois", "h"]),
        (["nice", "-n", "5", "nohup", "sh", "x.sh"], ["sh", "x.sh"]),
        (["sshpass", "-p", "pw", "ssh", "u@h"], ["ssh", "u@h"]),
        (["busybox", "sh"], ["sh"]),
        (["cat", "f"], ["cat", "f"]),
    ],
)
def test_unwrap_reaches_the_command_that_runs(words, expected):
    assert unwrap(words) == expected


def test_nested_scripts_of_shells_su_eval_and_trap():
    assert nested_script("bash", ["-lc", "id"]) == "id"
    assert nested_script("sh", ["script.sh"]) is None
    assert nested_script("su", ["-l", "art", "-c", "whoami"]) == "whoami"
    assert nested_script("su", ["--command=id", "art"]) == "id"
    assert nested_script("eval", ["echo", "x"]) == "echo x"
    assert nested_script("trap", ["rm -f /x", "EXIT"]) == "rm -f /x"
    assert nested_script("ls", ["-c"]) is None


def test_positionals_after_skip_leading_options_and_values():
    assert positionals_after(["-u", "x", "-E", "cmd", "-v"], valued=frozenset({"-u"})) == [
        "cmd",
        "-v",
    ]
    assert positionals_after(["--", "-x"], valued=frozenset()) == ["-x"]
