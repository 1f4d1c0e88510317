"""``lock_user``/``unlock_user`` on a real account made for the test: the password is
locked, the account expired, its processes end; unlock puts the shadow entry back exactly."""

import contextlib
import os
import pwd
import signal
import subprocess

import pytest

from provarmor.response.lock_user import LOCK_USER, UNLOCK_USER
from provarmor.response.records import ActionKind, ActionRequest, Outcome, UserTarget

from .conftest import gone, wait_for

pytestmark = pytest.mark.privileged


def shadow(name: str) -> list[str]:
    return (
        subprocess.run(["getent", "shadow", name], capture_output=True, text=True, check=True)
        .stdout.strip()
        .split(":")
    )


def pids_of(name: str) -> list[int]:
    found = subprocess.run(["pgrep", "-u", name], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


@pytest.fixture
def account(root):
    name = f"parsp{os.getpid() % 100000}"
    subprocess.run(["useradd", "--no-create-home", "-e", "2099-01-01", name], check=True)
    subprocess.run(["chpasswd"], input=f"{name}:Correct-Horse-7", text=True, check=True)
    try:
        yield name
    finally:
        for pid in pids_of(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["userdel", name], check=False, capture_output=True)


def act(kind: ActionKind, context, name: str):
    action = LOCK_USER if kind is ActionKind.LOCK_USER else UNLOCK_USER
    target = UserTarget(name=name)
    return action.run(ActionRequest(id="u", kind=kind, target=target, requested_by="t"), context)


def test_lock_ends_sessions_and_unlock_restores_the_entry(context, account):
    before = shadow(account)
    session = subprocess.Popen(["runuser", "-u", account, "--", "sleep", "300"])
    wait_for(lambda: bool(pids_of(account)), what="the user's process")
    sleepers = pids_of(account)
    result = act(ActionKind.LOCK_USER, context, account)
    assert result.outcome is Outcome.DONE, result.message
    locked = shadow(account)
    assert locked[1].startswith("!") and locked[7] == "0"
    session.wait(timeout=10)
    wait_for(lambda: all(gone(pid) for pid in sleepers), what="the user's processes to end")
    assert {str(pid) for pid in sleepers} <= set(result.affected)
    assert str(session.pid) not in result.affected  # runuser runs as root; its child dies

    back = act(ActionKind.UNLOCK_USER, context, account)
    assert back.outcome is Outcome.DONE, back.message
    assert shadow(account) == before


def test_an_incident_names_users_by_uid(context, account):
    uid = str(pwd.getpwnam(account).pw_uid)
    before = shadow(account)
    assert act(ActionKind.LOCK_USER, context, uid).outcome is Outcome.DONE
    assert shadow(account)[1].startswith("!")
    assert act(ActionKind.UNLOCK_USER, context, uid).outcome is Outcome.DONE
    assert shadow(account) == before


def test_root_and_unknown_users_are_refused(context):
    assert act(ActionKind.LOCK_USER, context, "root").outcome is Outcome.REFUSED
    assert act(ActionKind.LOCK_USER, context, "no-such-user-x").outcome is Outcome.REFUSED
    assert act(ActionKind.LOCK_USER, context, "-e").outcome is Outcome.REFUSED
    assert act(ActionKind.LOCK_USER, context, "0").outcome is Outcome.REFUSED
    assert act(ActionKind.LOCK_USER, context, "99999999999999999999").outcome is Outcome.REFUSED


def test_unlock_without_a_lock_record_fails_clearly(context, account):
    back = act(ActionKind.UNLOCK_USER, context, account)
    assert back.outcome is Outcome.FAILED and "no lock record" in back.message


def test_the_version_1_lock_record_fixture_reads():
    from pathlib import Path

    import msgspec

    from provarmor.response.lock_user import LockedUser

    fixture = Path(__file__).parents[2] / "data" / "response" / "locked-user-v1.json"
    record = msgspec.json.decode(fixture.read_bytes(), type=LockedUser)
    assert (record.format_version, record.name, record.previous_expire) == (1, "www-data", "")
