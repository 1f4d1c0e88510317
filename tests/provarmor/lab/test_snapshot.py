import os
import subprocess
from pathlib import Path

import pytest

from provarmor.lab import snapshot
from provarmor.lab.account_journal import ACCOUNT_FILES, AccountJournal

pytestmark = [pytest.mark.privileged, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def test_restore_deletes_journaled_users_and_entries_and_rewrites_changed_files():
    journal = AccountJournal().naming(users=["pvpytest1"], groups=["pvpytest1"])
    before = snapshot.take("pytest-restore", journal)
    hosts = Path("/etc/hosts").read_bytes()
    cron = Path("/etc/cron.d/provarmor-pytest")
    try:
        subprocess.run(["useradd", "-m", "pvpytest1"], check=True)
        cron.write_text("* * * * * root true\n")
        with Path("/etc/hosts").open("a") as handle:
            handle.write("# pytest\n")
        problems = snapshot.differences(before)
        assert "/etc/passwd: pvpytest1 added" in problems
        assert f"{cron} added" in problems and "/etc/hosts changed" in problems
    finally:
        report = snapshot.restore(before)
    assert report.accounts.users_deleted == ("pvpytest1",)
    assert str(cron) in report.removed and "/etc/hosts" in report.rewritten
    assert snapshot.differences(before) == []
    assert Path("/etc/hosts").read_bytes() == hosts and not Path("/home/pvpytest1").exists()


def test_a_persisted_snapshot_is_restored_by_restore_leftovers():
    saved = snapshot.save(snapshot.take("pytest-leftover"))
    marker = Path("/etc/sudoers.d/provarmor-pytest")
    marker.write_text("# nothing\n")
    marker.chmod(0o440)
    changed = snapshot.restore_leftovers()
    assert str(marker) in changed and not marker.exists() and not saved.exists()


def test_leftovers_of_two_runs_of_one_seed_are_undone_newest_first():
    """Run A (killed) created a user; run B of the same seed started while it was still
    there (B's journal: the user existed) and was killed too. Restoring A first and then B
    would write the user back; newest first, it is gone. The run ids sort A before B."""
    user = "pvpytest3"
    older = snapshot.take("pytest-order-a", AccountJournal().naming(users=[user], groups=[user]))
    saved = [snapshot.save(older)]
    try:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", user], check=True)
        newer = snapshot.take(
            "pytest-order-b", AccountJournal().naming(users=[user], groups=[user])
        )
        saved.append(snapshot.save(newer))
        later = (
            saved[0].stat().st_mtime_ns + 1_000_000_000
        )  # saved later: the order is by save time
        os.utime(saved[1], ns=(later, later))
        changed = snapshot.restore_leftovers()
        left = snapshot.differences(older)  # before the clean-up below
    finally:
        for path in saved:
            path.unlink(missing_ok=True)
        subprocess.run(["userdel", "-f", user], check=False, capture_output=True)
        subprocess.run(["groupdel", "-f", user], check=False, capture_output=True)
    assert f"user {user}" in changed
    assert left == []


def test_an_unreadable_leftover_is_reported_and_kept():
    path = snapshot.STATE_DIR / "snapshot-pytest-cut.json"
    snapshot.STATE_DIR.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'{"format_version": 2, "run_id": "pytest-cut", "files": [{"pa')
    try:
        changed = snapshot.restore_leftovers()
        assert path.exists()
    finally:
        path.unlink(missing_ok=True)
    (line,) = [line for line in changed if str(path) in line]
    assert line.startswith(f"{path}: unreadable, kept (nothing of it restored): ")


FIXTURES = Path(__file__).resolve().parents[2] / "data" / "lab" / "snapshot"


def test_a_format_1_snapshot_leaves_the_user_database_alone():
    """Format 1 kept whole account files (here a one-line /etc/passwd): a leftover of that
    format must never write them back over accounts made since."""
    old = snapshot.load(FIXTURES / "snapshot-v1.json")
    assert old.accounts == AccountJournal()
    problems = snapshot.differences(old)  # (the watched folders' entries are not listed)
    assert "/etc/passwd changed" not in problems
    assert "/etc/cron.d/provarmor-snapshot-fixture changed" not in problems


def test_a_format_2_snapshot_carries_its_account_journal():
    current = snapshot.load(FIXTURES / "snapshot-v2.json")
    assert current.format_version == 2
    assert current.accounts.users == ("pvfixture1",)
    assert {entry.path for entry in current.accounts.before} == set(ACCOUNT_FILES)
    problems = snapshot.differences(current)
    assert not [line for line in problems if line.startswith(ACCOUNT_FILES)]
