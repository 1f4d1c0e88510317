import pytest

from provarmor.lab.atomics.targets import Targets, option_values, positionals, targets_of


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("rm -rf /a /b", Targets(deletes=("/a", "/b"))),
        ("mv /tmp/x ~/.bash_profile", Targets(writes=("~/.bash_profile",), deletes=("/tmp/x",))),
        ("cp --parents {} /out", Targets(writes=("/out",))),
        ("cp -t /dir a b", Targets(writes=("/dir",))),
        ("ln -sf /dev/null ~/.bash_history", Targets(writes=("~/.bash_history",))),
        ("chmod -R 755 /tmp/d", Targets(writes=("/tmp/d",))),
        ("chmod -w /etc/x", Targets(writes=("/etc/x",))),
        ("chattr -i /var/spool/cron/root", Targets(writes=("/var/spool/cron/root",))),
        ("setcap cap_setuid=ep /tmp/cap", Targets(writes=("/tmp/cap",))),
        ("tee -a /etc/rc.local", Targets(writes=("/etc/rc.local",))),
        ("dd if=/dev/zero of=/var/log/syslog bs=1", Targets(writes=("/var/log/syslog",))),
        ("sed -i s/a/b/ /etc/profile", Targets(writes=("/etc/profile",))),
        ("sed s/a/b/ /etc/profile", Targets()),
        ("truncate -s 0 /var/log/messages", Targets(writes=("/var/log/messages",))),
        ("touch -acmr /bin/sh /tmp/t", Targets(writes=("/tmp/t",))),
        ("curl -sS http://x/y -o /usr/bin/kind", Targets(writes=("/usr/bin/kind",))),
        ("gcc a.c -o /tmp/a", Targets(writes=("/tmp/a",))),
        ("make -C /tmp/src", Targets(writes=("/tmp/src",))),
        ("tar -czf /tmp/x.tgz /etc", Targets(writes=("/tmp/x.tgz",))),
        ("tar -xzf /tmp/x.tgz -C /opt", Targets(writes=("/opt",))),
        ("vim /etc/sudoers", Targets(writes=("/etc/sudoers", "/etc/.sudoers.swp"))),
        ("python3 -m venv /tmp/env", Targets(writes=("/tmp/env",))),
        ("cat /etc/shadow", Targets()),
    ],
)
def test_targets_of_common_commands(command, expected):
    name, *args = command.split()
    assert targets_of(name, args) == expected


def test_positionals_skip_options_and_their_values():
    assert positionals(["-s", "/bin/sh", "-m", "art"], valued=frozenset({"-s"})) == ["art"]
    assert positionals(["--", "-rf"]) == ["-rf"]


def test_option_values_in_every_spelling():
    args = ["-o", "a", "-ob", "--output", "c", "--output=d"]
    assert option_values(args, ("-o", "--output")) == ["a", "b", "c", "d"]
