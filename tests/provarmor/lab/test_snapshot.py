import os
import subprocess
from pathlib import Path

import pytest

from provarmor.lab import snapshot

pytestmark = [pytest.mark.privileged, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def test_restore_deletes_added_users_and_entries_and_rewrites_changed_files():
    before = snapshot.take("pytest-restore")
    hosts = Path("/etc/hosts").read_bytes()
    cron = Path("/etc/cron.d/provarmor-pytest")
    try:
        subprocess.run(["useradd", "-m", "pvpytest1"], check=True)
        cron.write_text("* * * * * root true\n")
        with Path("/etc/hosts").open("a") as handle:
            handle.write("# pytest\n")
        problems = snapshot.differences(before)
        assert "user pvpytest1 added" in problems
        assert f"{cron} added" in problems and "/etc/hosts changed" in problems
    finally:
        report = snapshot.restore(before)
    assert report.users_deleted == ("pvpytest1",)
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
