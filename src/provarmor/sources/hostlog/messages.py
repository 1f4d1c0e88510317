"""What a logged line says about logins, sessions, accounts and scheduled jobs.

:func:`parse_message` is pure: a program name and its text in, one :class:`LogFact` out.
It knows the lines OpenSSH's sshd, sudo, su (util-linux), PAM (``pam_unix``), shadow's
useradd/usermod/userdel/chage/passwd and cron write (the wordings below are those of Debian 12;
each is covered by a real capture in ``tests/data/hostlogs``). A line it does not know is a
plain ``log`` fact: never an error, since any program may log anything.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import msgspec
from msgspec import Struct

from provarmor.model.actions import Action


class LogFact(Struct, frozen=True, kw_only=True, gc=False):
    """The meaning of one logged line (field meanings: :mod:`provarmor.model.actions`)."""

    action: Action = Action.LOG
    outcome: str = "success"
    reason: str = ""
    user: str = ""
    user_id: str = ""
    target_user: str = ""
    target_user_id: str = ""
    source_ip: str = ""
    source_port: int = 0
    method: str = ""
    service: str = ""
    count: int = 1
    command: str = ""
    command_pid: int = 0


PLAIN = LogFact()

_FROM = r"(?P<ip>\S+) port (?P<port>\d+)"
_SSHD: tuple[tuple[re.Pattern[str], Action, str, str], ...] = tuple(
    (re.compile(pattern), action, outcome, reason)
    for pattern, action, outcome, reason in (
        (
            r"Accepted (?P<method>\S+) for (?P<user>.+?) from " + _FROM,
            Action.AUTHENTICATE,
            "success",
            "",
        ),
        (
            r"Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*?) from " + _FROM,
            Action.AUTHENTICATE,
            "failure",
            "",
        ),
        (
            r"Invalid user (?P<user>.*?) from " + _FROM,
            Action.AUTHENTICATE,
            "failure",
            "invalid user",
        ),
        (
            r"(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?"
            r"(?P<user>.*?) from " + _FROM,
            Action.DISCONNECT,
            "failure",
            "maximum authentication attempts exceeded",
        ),
        (
            r"Disconnecting (?:authenticating|invalid) user (?P<user>.*?) " + _FROM + r": "
            r"(?P<why>.*?)(?: \[preauth\])?$",
            Action.DISCONNECT,
            "failure",
            "",
        ),
        (
            r"Connection (?:closed|reset) by (?:(?:authenticating|invalid) user (?P<user>.*?) )?"
            + _FROM,
            Action.DISCONNECT,
            "unknown",
            "",
        ),
        (
            r"Disconnected from (?:(?:authenticating|invalid) )?user (?P<user>.*?) " + _FROM,
            Action.DISCONNECT,
            "success",
            "",
        ),
        (
            r"Received disconnect from " + _FROM + r":\d+: (?P<why>.*?)(?: \[preauth\])?$",
            Action.DISCONNECT,
            "success",
            "",
        ),
    )
)
_PAM = re.compile(r"pam_unix\((?P<service>[^:)]+):(?P<kind>\w+)\): (?P<text>.*)$")
_PAM_FIELDS = re.compile(r"(\w+)=(\S*)")
_SESSION_OPENED = re.compile(
    r"session opened for user (?P<user>[^(\s]+)(?:\(uid=(?P<uid>\d+)\))? by (?P<by>\S*?)\(uid=\d+\)"
)
_SESSION_CLOSED = re.compile(r"session closed for user (?P<user>\S+)")
_PASSWORD_CHANGED = re.compile(r"password changed for (?P<user>\S+)")
_PAM_MORE = re.compile(r"PAM (?P<count>\d+) more authentication failures?; (?P<text>.*)$")
_SUDO_HEAD = re.compile(r"\s*(?P<user>\S+) : (?P<rest>.*)$")
_SUDO_ATTEMPTS = re.compile(r"(?P<count>\d+) incorrect password attempts?")
_SU_OK = re.compile(r"\(to (?P<target>[^)]+)\) (?P<user>\S+) on (?P<tty>\S+)")
_SU_FAILED = re.compile(r"FAILED (?:SU|su) \(to (?P<target>[^)]+)\) (?P<user>\S+) on (?P<tty>\S+)")
_NEW_USER = re.compile(r"new user: name=(?P<user>[^,]+), UID=(?P<uid>\d+)")
_DELETE_USER = re.compile(r"delete user '(?P<user>[^']+)'")
_USERMOD = re.compile(
    r"(?:change user '(?P<user>[^']+)'(?: UID from '\d+' to '(?P<uid>\d+)')?"
    r"|(?:add|delete) '(?P<member>[^']+)' (?:to|from) (?:shadow )?group"
    r"|(?:lock|unlock) user '(?P<locked>[^']+)')"
)
_CHAGE = re.compile(r"changed password expiry for (?P<user>\S+)")
_PASSWD = re.compile(r"password for '(?P<user>[^']+)' changed by '(?P<by>[^']+)'")
_CRON_CMD = re.compile(r"\((?P<user>[^)]+)\) CMD \((?:\[(?P<pid>\d+)\] )?(?P<command>.*)\)$")


def _ip(text: str) -> str:
    """``text`` when it is an IP address (sshd may log a host name instead)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def _port(text: str | None) -> int:
    return int(text) if text and len(text) <= 5 else 0


def _sshd(message: str) -> LogFact:
    for pattern, action, outcome, reason in _SSHD:
        match = pattern.match(message)
        if match is None:
            continue
        found = match.groupdict()
        why = found.get("why") or reason
        if found.get("invalid"):
            why = "invalid user"
        if message.endswith("[preauth]") and action is Action.DISCONNECT:
            why = f"{why} (preauth)" if why else "preauth"
        return LogFact(
            action=action,
            outcome=outcome,
            reason=why,
            user=found.get("user") or "",
            source_ip=_ip(found.get("ip") or ""),
            source_port=_port(found.get("port")),
            method=found.get("method") or "",
            service="sshd",
        )
    more = _PAM_MORE.match(message)
    if more is not None:
        fields = dict(_PAM_FIELDS.findall(more["text"]))
        return LogFact(
            action=Action.AUTHENTICATE,
            outcome="failure",
            reason="authentication failure",
            user=fields.get("user", ""),
            source_ip=_ip(fields.get("rhost", "")),
            service="sshd",
            count=int(more["count"][:6]),
        )
    return _pam(message)


def _pam(message: str) -> LogFact:
    match = _PAM.search(message)
    if match is None:
        return PLAIN
    service, kind, text = match["service"], match["kind"], match["text"]
    if kind == "auth" and text.startswith("authentication failure"):
        fields = dict(_PAM_FIELDS.findall(text))
        return LogFact(
            action=Action.AUTHENTICATE,
            outcome="failure",
            reason="authentication failure",
            user=fields.get("user") or fields.get("ruser", ""),
            source_ip=_ip(fields.get("rhost", "")),
            service=service,
        )
    if kind == "session":
        opened = _SESSION_OPENED.match(text)
        if opened is not None:
            return LogFact(
                action=Action.SESSION_START,
                user=opened["user"],
                user_id=opened["uid"] or "",
                service=service,
            )
        closed = _SESSION_CLOSED.match(text)
        if closed is not None:
            return LogFact(action=Action.SESSION_END, user=closed["user"], service=service)
    if kind == "chauthtok":
        changed = _PASSWORD_CHANGED.match(text)
        if changed is not None:
            return LogFact(
                action=Action.USER_CHANGE,
                reason="password changed",
                target_user=changed["user"],
                service=service,
            )
    return PLAIN


def _sudo(message: str) -> LogFact:
    head = _SUDO_HEAD.match(message)
    if head is None or "COMMAND=" not in head["rest"]:
        return _pam(message)
    fields: dict[str, str] = {}
    notes: list[str] = []
    for part in head["rest"].split(" ; "):
        key, sep, value = part.partition("=")
        if sep and key.isupper() and key.isalpha():
            fields.setdefault(key, value)
        else:
            notes.append(part.strip())
    if "COMMAND" not in fields:
        return _pam(message)
    fact = LogFact(
        action=Action.RUN_AS,
        user=head["user"],
        target_user=fields.get("USER", ""),
        command=fields["COMMAND"],
        service="sudo",
    )
    for note in notes:
        attempts = _SUDO_ATTEMPTS.fullmatch(note)
        if attempts is not None:
            return msgspec.structs.replace(
                fact,
                action=Action.AUTHENTICATE,
                outcome="failure",
                reason="incorrect password",
                count=int(attempts["count"][:6]),
            )
    if notes:
        return msgspec.structs.replace(fact, outcome="failure", reason="; ".join(notes))
    return fact


def _su(message: str) -> LogFact:
    failed = _SU_FAILED.match(message)
    if failed is not None:
        return LogFact(
            action=Action.RUN_AS,
            outcome="failure",
            reason="authentication failure",
            user=failed["user"],
            target_user=failed["target"],
            service="su",
        )
    switched = _SU_OK.match(message)
    if switched is not None:
        return LogFact(
            action=Action.RUN_AS,
            user=switched["user"],
            target_user=switched["target"],
            service="su",
        )
    return _pam(message)


def _useradd(message: str) -> LogFact:
    created = _NEW_USER.match(message)
    if created is None:
        return _pam(message)
    return LogFact(
        action=Action.USER_CREATE, target_user=created["user"], target_user_id=created["uid"]
    )


def _userdel(message: str) -> LogFact:
    deleted = _DELETE_USER.match(message)
    if deleted is None:
        return _pam(message)
    return LogFact(action=Action.USER_DELETE, target_user=deleted["user"])


def _usermod(message: str) -> LogFact:
    changed = _USERMOD.match(message)
    if changed is None:
        return _pam(message)
    user = changed["user"] or changed["member"] or changed["locked"] or ""
    return LogFact(
        action=Action.USER_CHANGE,
        reason=message,
        target_user=user,
        target_user_id=changed["uid"] or "",
    )


def _chage(message: str) -> LogFact:
    changed = _CHAGE.match(message)
    if changed is None:
        return _pam(message)
    return LogFact(
        action=Action.USER_CHANGE, reason="password expiry changed", target_user=changed["user"]
    )


def _passwd(message: str) -> LogFact:
    changed = _PASSWD.match(message)
    if changed is None:
        return _pam(message)
    return LogFact(
        action=Action.USER_CHANGE,
        reason="password changed",
        user=changed["by"],
        target_user=changed["user"],
    )


def _cron(message: str) -> LogFact:
    job = _CRON_CMD.match(message)
    if job is None:
        return _pam(message)
    return LogFact(
        action=Action.SCHEDULED_RUN,
        user=job["user"],
        command=job["command"],
        command_pid=int(job["pid"]) if job["pid"] and len(job["pid"]) <= 10 else 0,
    )


_BY_PROGRAM: dict[str, Callable[[str], LogFact]] = {
    "sshd": _sshd,
    "sudo": _sudo,
    "su": _su,
    "useradd": _useradd,
    "userdel": _userdel,
    "usermod": _usermod,
    "chage": _chage,
    "passwd": _passwd,
    "cron": _cron,
    "crond": _cron,
}


def parse_message(program: str, message: str) -> LogFact:
    """What ``program``'s logged ``message`` says (:data:`PLAIN` when nothing known)."""
    reader = _BY_PROGRAM.get(program.lower().rsplit("/", 1)[-1], _pam)
    return reader(message)
