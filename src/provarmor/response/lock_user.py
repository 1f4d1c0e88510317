"""``lock_user`` (lock the password, expire the account so keys stop working too, end the
user's sessions by killing their processes) and its undo ``unlock_user`` (unlock, and put
the account's previous expiry date back, as recorded at lock time in
``<state_dir>/users/<name>.json``)."""

from __future__ import annotations

import os
import pwd
import re
import signal
import subprocess

import msgspec

from provarmor.response.action import Action, ResponseContext, failed, refused
from provarmor.response.allowlist import process_refusal, user_refusal
from provarmor.response.processes import pin, send, wait_exited
from provarmor.response.records import ActionKind, ActionRequest, ActionResult, Outcome, UserTarget
from provarmor.sources.procfs import iter_processes
from provarmor.storage.private import private_dir

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")
COMMAND_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 2.0


class LockedUser(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int = 1
    name: str
    previous_expire: str
    """Field 8 of the shadow entry before the lock (days since the epoch; empty: never)."""


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )


def _shadow_expire(name: str) -> str | None:
    done = _run("getent", "shadow", name)
    fields = done.stdout.strip().split(":")
    return fields[7] if done.returncode == 0 and len(fields) >= 8 else None


def _user(target: UserTarget, context: ResponseContext) -> tuple[pwd.struct_passwd | None, str]:
    """The account a target names (a name, or a numeric uid as incidents carry it)."""
    try:
        if target.name.isdigit():
            entry = pwd.getpwuid(int(target.name))
        elif _NAME.fullmatch(target.name):
            entry = pwd.getpwnam(target.name)
        else:
            return None, f"not a user name: {target.name!r}"
    except (KeyError, OverflowError):
        return None, f"no user {target.name!r}"
    refusal = user_refusal(entry.pw_name, entry.pw_uid, context)
    return (None, refusal) if refusal is not None else (entry, "")


def _end_sessions(uid: int, request: ActionRequest, context: ResponseContext) -> list[str]:
    """SIGKILL every process running as ``uid``; returns their pids."""
    pinned = []
    for info in iter_processes(clock=context.clock, proc=context.proc):
        if uid in (info.uid, info.euid) and (
            process_refusal(info, context, explicit=request.explicit) is None
        ):
            member = pin(info, context)
            if member is not None:
                pinned.append(member)
    try:
        for member in pinned:
            send(member, signal.SIGKILL)
        wait_exited(pinned, timeout=EXIT_TIMEOUT_S)
    finally:
        for member in pinned:
            os.close(member.fd)
    return [str(member.info.pid) for member in pinned]


def lock_user(request: ActionRequest, context: ResponseContext) -> ActionResult:
    target = request.target
    assert isinstance(target, UserTarget)
    entry, refusal = _user(target, context)
    if entry is None:
        return refused(refusal)
    previous = _shadow_expire(entry.pw_name)
    if previous is None:
        return failed(f"no shadow entry for {entry.pw_name}")
    record = context.settings.state_dir / "users" / f"{entry.pw_name}.json"
    private_dir(record.parent)
    if not record.exists():  # locked twice: keep the expiry from before the first lock
        record.write_bytes(
            msgspec.json.encode(LockedUser(name=entry.pw_name, previous_expire=previous))
        )
    for command in (("usermod", "-L", entry.pw_name), ("chage", "-E", "0", entry.pw_name)):
        done = _run(*command)
        if done.returncode != 0:
            return failed(f"{' '.join(command)}: {done.stderr.strip()}")
    pids = _end_sessions(entry.pw_uid, request, context)
    return ActionResult(
        outcome=Outcome.DONE,
        message=f"locked {entry.pw_name} (password locked, account expired), ended "
        f"{len(pids)} process(es)",
        affected=(entry.pw_name, *pids),
    )


def unlock_user(request: ActionRequest, context: ResponseContext) -> ActionResult:
    target = request.target
    assert isinstance(target, UserTarget)
    entry, refusal = _user(target, context)
    if entry is None:
        return refused(refusal)
    record = context.settings.state_dir / "users" / f"{entry.pw_name}.json"
    try:
        locked = msgspec.json.decode(record.read_bytes(), type=LockedUser)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        return failed(f"no lock record for {entry.pw_name} ({exc}); unlock by hand")
    expire = locked.previous_expire or "-1"
    for command in (("usermod", "-U", entry.pw_name), ("chage", "-E", expire, entry.pw_name)):
        done = _run(*command)
        if done.returncode != 0:
            return failed(f"{' '.join(command)}: {done.stderr.strip()}")
    record.unlink()
    return ActionResult(
        outcome=Outcome.DONE, message=f"unlocked {entry.pw_name}", affected=(entry.pw_name,)
    )


LOCK_USER = Action(ActionKind.LOCK_USER, UserTarget, lock_user, undo=ActionKind.UNLOCK_USER)
UNLOCK_USER = Action(ActionKind.UNLOCK_USER, UserTarget, unlock_user)
