import os
import subprocess
from pathlib import Path

import pytest

from provarmor.lab import snapshot
from provarmor.lab.account_journal import AccountJournal

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
