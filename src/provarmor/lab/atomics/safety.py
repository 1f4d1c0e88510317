"""The safety screen: the reasons an atomic command must not run on this machine.

Conservative by design: a command is refused when it could power the machine off, fork-bomb
it, loop forever, delete or write outside the test's scratch area and the files the lab
restores, touch block devices, kill processes it did not start, change the firewall, swap,
kernel modules or kernel settings, change existing accounts or the root password, touch
``sshd_config``, impair audit or logging, change service state or schedule jobs that the file
snapshot cannot undo, write ``/etc/ld.so.preload``, set the clock, mount file systems,
install packages or change the system's trust store. Text that cannot be read is refused.

Two passes: patterns over the raw text (they also see inside quotes, ``python -c`` code and
payload scripts), then a pass over each simple command (:mod:`shellwords`), following
``sh -c``, ``su -c``, ``eval``, ``trap``, ``find -exec`` and ``xargs`` into the commands they
run, with the files each command writes judged by :mod:`areas`. False alarms only cost a
skipped test; a miss could cost the machine. Everything here is pure.

The hazards and the raw-text pass live in :mod:`hazards`; what a test creates itself in
:mod:`identities`; wrappers such as ``sudo`` and ``sh -c`` in :mod:`wrappers`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from provarmor.lab.atomics.areas import HOME, Areas, judge_path, resolve
from provarmor.lab.atomics.hazards import Finding, Hazard, pattern_findings
from provarmor.lab.atomics.identities import (
    CREATORS,
    Identities,
    created_identities,
    unset_variables,
)
from provarmor.lab.atomics.shellwords import ShellSyntaxError, SimpleCommand, split_commands
from provarmor.lab.atomics.targets import DELETERS, positionals, targets_of
from provarmor.lab.atomics.wrappers import nested_script, positionals_after, unwrap


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ACCOUNT_CHANGERS = frozenset(
    {"passwd", "usermod", "chsh", "chfn", "chage", "userdel", "deluser", "smbpasswd", "rmuser"}
)
_GROUP_CHANGERS = frozenset({"gpasswd", "groupmod", "groupdel", "delgroup"})
_SERVICE_VERBS = frozenset(
    _names(
        "start stop restart reload try-restart reload-or-restart try-reload-or-restart "
        "enable disable reenable mask unmask kill isolate set-default daemon-reload "
        "daemon-reexec edit set-property preset preset-all link revert set-environment "
        "unset-environment import-environment switch-root freeze thaw clean"
    )
)
_SERVICE_COMMAND_VERBS = frozenset(
    _names("start stop restart reload force-reload enable disable onestart onestop delete")
)
_FIREWALL_TOOLS = frozenset({"iptables", "ip6tables", "iptables-legacy", "iptables-nft", "nft"})
_IPTABLES_LISTING = frozenset({"-L", "--list", "-S", "--list-rules"})
_IPTABLES_CHANGES = frozenset(
    _names(
        "-A --append -D --delete -I --insert -R --replace -F --flush -X --delete-chain -Z "
        "--zero -P --policy -N --new-chain -E --rename-chain"
    )
)
_PACKAGE_VERBS = frozenset(
    _names(
        "install remove purge upgrade update dist-upgrade full-upgrade reinstall "
        "autoremove add del delete uninstall get i -S -R -U -i -e -r -P --install "
        "--remove --purge -y"
    )
)
_PACKAGE_MANAGERS = frozenset(
    _names(
        "apt apt-get aptitude yum dnf zypper pacman apk brew snap flatpak pipx port pkg "
        "pip pip2 pip3 npm gem dpkg rpm easy_install cargo go cpan"
    )
)
_MOUNT_READONLY = frozenset({"-l", "--show-labels", "-t", "--types"})


@dataclass(slots=True, kw_only=True)
class _Screen:
    areas: Areas
    created: Identities
    unset: frozenset[str] = frozenset()
    findings: list[Finding] = field(default_factory=list)

    def add(self, hazard: Hazard, detail: str) -> None:
        self.findings.append(Finding(hazard, detail[:160]))

    def judge(self, path: str, *, cwd: str | None, deleting: bool = False) -> None:
        verdict = judge_path(path, areas=self.areas, cwd=cwd, deleting=deleting, unset=self.unset)
        if verdict is not None:
            hazard, shown = verdict
            self.add(Hazard(hazard.value), f"{'deletes' if deleting else 'writes'} {shown}")


def _find_actions(args: Sequence[str]) -> tuple[list[str], list[list[str]], bool]:
    """``find``'s start points, the commands of its ``-exec`` actions and ``-delete``."""
    roots = []
    for arg in args:
        if arg.startswith(("-", "(", "!")):
            break
        roots.append(arg)
    commands: list[list[str]] = []
    for index, arg in enumerate(args):
        if arg in ("-exec", "-execdir", "-ok", "-okdir"):
            end = index + 1
            while end < len(args) and args[end] not in (";", "+"):
                end += 1
            commands.append(list(args[index + 1 : end]))
    return roots or ["."], commands, "-delete" in args


def _check_find(screen: _Screen, args: Sequence[str], *, cwd: str | None) -> None:
    roots, commands, deletes = _find_actions(args)
    every = [f"{root.rstrip('/')}/*" for root in roots]
    if deletes:
        for pattern in every:
            screen.judge(pattern, cwd=cwd, deleting=True)
    for words in commands:
        for root in every:
            replaced = [root if word == "{}" else word for word in words]
            _check_words(screen, replaced, cwd=cwd)


def _check_kill(screen: _Screen, args: Sequence[str]) -> None:
    if args and args[0].startswith("-") and args[0] not in ("-s", "-n", "--signal"):
        args = args[1:]
    elif args and args[0] in ("-s", "-n", "--signal"):
        args = args[2:]
    for target in args:
        bare = target.lstrip("-")
        if bare.isdigit() or "$(" in target or "`" in target:
            screen.add(Hazard.KILL, f"kill {target}: not a process this test started")


_PW_WORDS = frozenset(
    _names("user group mod usermod userdel del lock unlock show usershow groupmod groupdel")
)
_ACCOUNT_VALUED: dict[str, frozenset[str]] = {
    "usermod": frozenset(_names("-c -d -e -f -g -G -l -p -s -u -R -P -Z --shell --home")),
    "chsh": frozenset(["-s", "-R", "--shell", "--root"]),
    "chfn": frozenset(["-f", "-r", "-w", "-h", "-o", "-R"]),
    "chage": frozenset(["-d", "-E", "-I", "-m", "-M", "-W", "-R"]),
    "passwd": frozenset(["-n", "-x", "-w", "-i", "-r", "-R"]),
    "userdel": frozenset({"-R", "-P", "--root", "--prefix"}),
    "deluser": frozenset({"--backup-to", "--conf"}),
}


def _check_grep(screen: _Screen, name: str, args: Sequence[str], *, cwd: str | None) -> None:
    clusters = [arg for arg in args if arg.startswith("-") and not arg.startswith("--")]
    recursive = name == "rgrep" or "--recursive" in args or "--dereference-recursive" in args
    if not (recursive or any(set(cluster) & {"r", "R"} for cluster in clusters)):
        return
    for word in positionals(args, valued=frozenset({"-e", "-f", "-m", "-A", "-B", "-C"}))[1:]:
        place = resolve(word, cwd=cwd)
        if place is not None and (place == "/" or place.startswith(("/proc", "/sys", "/dev"))):
            screen.add(Hazard.LOGGING, f"{name} -r {place} reads /proc/kmsg (the kernel log)")


def _account_target(name: str, args: Sequence[str]) -> str:
    if name in ("pw", "rmuser"):
        words = [
            word for word in positionals(args, valued=frozenset({"-n"})) if word not in _PW_WORDS
        ]
        return words[0] if words else "?"
    words = positionals(args, valued=_ACCOUNT_VALUED.get(name, frozenset()))
    return words[-1] if words else "root"


def _check_accounts(screen: _Screen, name: str, args: Sequence[str]) -> None:
    if name == "pw" and args[:1] in (["useradd"], ["adduser"], ["groupadd"]):
        return
    if name in _GROUP_CHANGERS:
        group = (positionals(args)[-1:] or ["?"])[0]
        if group not in screen.created.groups:
            screen.add(Hazard.ACCOUNTS, f"{name} changes group {group}")
        return
    target = _account_target(name, args)
    if target not in screen.created.users:
        screen.add(Hazard.ACCOUNTS, f"{name} changes the existing account {target}")


def _check_new_account(screen: _Screen, args: Sequence[str]) -> None:
    valued = frozenset(
        _names("-b -c -d -e -f -g -G -k -K -p -s -u -Z --home-dir --home --base-dir --uid --shell")
    )
    words = positionals(args, valued=valued)
    user = words[-1] if words else "?"
    homes = [
        value
        for option in ("-d", "--home-dir", "--home", "-b", "--base-dir")
        for value in _values(args, option)
    ]
    for home in homes:
        if home.rstrip("/") != f"/home/{user}":
            screen.add(Hazard.ACCOUNTS, f"new account {user} gets home {home} (an existing place)")
    uids = _values(args, "-u") + _values(args, "--uid")
    if "0" in uids or "-o" in args:
        screen.add(Hazard.ACCOUNTS, f"new account {user} shares a uid (root's)")


def _values(args: Sequence[str], option: str) -> list[str]:
    found = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == option]
    return found + [arg.split("=", 1)[1] for arg in args if arg.startswith(option + "=")]


def _check_services(screen: _Screen, name: str, args: Sequence[str]) -> None:
    words = positionals(args)
    if name == "systemctl" and words and words[0] in _SERVICE_VERBS:
        screen.add(Hazard.SERVICES, f"systemctl {' '.join(words[:2])} (service state)")
    elif name == "service" and len(words) > 1 and words[1] in _SERVICE_COMMAND_VERBS:
        screen.add(Hazard.SERVICES, f"service {' '.join(words[:2])} (service state)")
    elif name in ("at", "batch") and "-l" not in args:
        screen.add(Hazard.SERVICES, f"{name} schedules a job the snapshot cannot undo")


def _check_firewall(screen: _Screen, name: str, args: Sequence[str]) -> None:
    if name == "nft":
        if positionals(args)[:1] != ["list"]:
            screen.add(Hazard.FIREWALL, f"nft {' '.join(args)[:60]}")
        return
    changes = [arg for arg in args if arg in _IPTABLES_CHANGES]
    if changes or not any(arg in _IPTABLES_LISTING for arg in args):
        screen.add(Hazard.FIREWALL, f"{name} {' '.join(args)[:60]}")


def _check_auditing(screen: _Screen, name: str, args: Sequence[str]) -> None:
    if name == "auditctl" and any(arg not in ("-l", "-s", "-v") for arg in args):
        screen.add(Hazard.LOGGING, f"auditctl {' '.join(args)[:60]} (the agent's audit rules)")


def _check_packages(screen: _Screen, name: str, args: Sequence[str]) -> None:
    if name in ("python", "python3", "python2") and args[:2] == ["-m", "pip"]:
        name, args = "pip", args[2:]
    elif name in ("python", "python3", "python2") or name not in _PACKAGE_MANAGERS:
        return
    if name == "cpan" and not positionals(args):
        return
    if any(arg in _PACKAGE_VERBS for arg in args) or name == "cpan":
        screen.add(Hazard.PACKAGES, f"{name} {' '.join(args)[:60]}")


def _check_mount(screen: _Screen, name: str, args: Sequence[str]) -> None:
    listing = (
        name == "mount"
        and all(arg in _MOUNT_READONLY for arg in args if arg.startswith("-"))
        and not positionals(args, valued=frozenset({"-t", "--types"}))
    )
    if listing or (
        name == "losetup" and all(arg in ("-a", "-l", "--all", "--list") for arg in args)
    ):
        return
    screen.add(Hazard.MOUNT, f"{name} {' '.join(args)[:60]}")


def _check_clock(screen: _Screen, args: Sequence[str]) -> None:
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-d", "--date", "-r", "--reference", "-f", "--file"):
            skip = True
        elif arg.startswith(("-s", "--set")) or not arg.startswith(("-", "+")):
            screen.add(Hazard.CLOCK, f"date {arg} sets the clock")
            return


def _check_new_ids(screen: _Screen, words: Sequence[str]) -> None:
    name, args = posixpath.basename(words[0]), words[1:]
    if name in CREATORS or (name == "pw" and args[:1] in (["useradd"], ["adduser"])):
        _check_new_account(screen, args[1:] if name == "pw" else args)


def _check_xargs(screen: _Screen, args: Sequence[str], *, cwd: str | None) -> None:
    inner = positionals_after(
        args, valued=frozenset(["-n", "-I", "-L", "-P", "-d", "-E", "-a", "-s"])
    )
    if inner and posixpath.basename(inner[0]) in DELETERS:
        screen.add(Hazard.DELETE, f"xargs {' '.join(inner)[:60]} deletes unknown files")
    if inner:
        _check_words(screen, [*inner, "$XARGS"], cwd=cwd)


_Check = Callable[[_Screen, str, Sequence[str], "str | None"], None]
_BY_NAME: dict[str, _Check] = {
    **dict.fromkeys(
        _ACCOUNT_CHANGERS | _GROUP_CHANGERS | {"pw"}, lambda s, n, a, c: _check_accounts(s, n, a)
    ),
    **dict.fromkeys(
        ("systemctl", "service", "at", "batch"), lambda s, n, a, c: _check_services(s, n, a)
    ),
    **dict.fromkeys(_FIREWALL_TOOLS, lambda s, n, a, c: _check_firewall(s, n, a)),
    "auditctl": lambda s, n, a, c: _check_auditing(s, n, a),
    **dict.fromkeys(
        ("mount", "umount", "losetup", "pivot_root"), lambda s, n, a, c: _check_mount(s, n, a)
    ),
    "find": lambda s, n, a, c: _check_find(s, a, cwd=c),
    "xargs": lambda s, n, a, c: _check_xargs(s, a, cwd=c),
    "kill": lambda s, n, a, c: _check_kill(s, a),
    **dict.fromkeys(
        ("grep", "egrep", "fgrep", "rgrep"), lambda s, n, a, c: _check_grep(s, n, a, cwd=c)
    ),
    "date": lambda s, n, a, c: _check_clock(s, a),
}
"""The checks that depend on the command's name (beyond the files it writes)."""


def _check_words(screen: _Screen, words: Sequence[str], *, cwd: str | None) -> str | None:
    """Check one command (its words); returns the working directory after it."""
    words = unwrap(words)
    if not words:
        return cwd
    name, args = posixpath.basename(words[0]), list(words[1:])
    if name == "cd":
        return resolve(args[0], cwd=cwd) if args else HOME
    nested = nested_script(name, args)
    if nested is not None:
        _check_text(screen, nested, cwd=None if name in ("su", "runuser") else cwd)
    check = _BY_NAME.get(name)
    if check is not None:
        check(screen, name, args, cwd)
    _check_packages(screen, name, args)
    _check_new_ids(screen, words)
    found = targets_of(name, args)
    for path in found.deletes:
        screen.judge(path, cwd=cwd, deleting=True)
    for path in found.writes:
        screen.judge(path, cwd=cwd)
    return cwd


def _check_commands(screen: _Screen, commands: Sequence[SimpleCommand], *, cwd: str | None) -> None:
    for command in commands:
        for path in command.writes:
            screen.judge(path, cwd=cwd)
        cwd = _check_words(screen, command.words, cwd=cwd)


def _check_text(screen: _Screen, text: str, *, cwd: str | None) -> None:
    try:
        commands = split_commands(text)
    except ShellSyntaxError as error:
        screen.add(Hazard.UNREADABLE, str(error))
        return
    _check_commands(screen, commands, cwd=cwd)


def screen(
    text: str,
    *,
    areas: Areas | None = None,
    created: Identities | None = None,
    cwd: str | None = HOME,
) -> list[Finding]:
    """Every reason not to run shell ``text`` (empty when it may run), without repeats.

    ``created`` names the users and groups the test makes itself (from all its commands:
    the cleanup deletes what the command created); by default those ``text`` creates."""
    created = created or created_identities([text])
    checked = _Screen(
        areas=(areas or Areas()).with_scratch(*(f"/home/{user}" for user in created.users)),
        created=created,
        unset=unset_variables(text),
    )
    checked.findings.extend(pattern_findings(text))
    _check_text(checked, text, cwd=cwd)
    return list(dict.fromkeys(checked.findings))
