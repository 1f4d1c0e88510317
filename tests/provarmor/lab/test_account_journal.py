"""The lab's account journal on the real user database (root): exactly the journaled
accounts are removed or written back; another process's account changes made meanwhile
survive."""

import os
import subprocess

import pytest

from provarmor.lab.account_journal import AccountJournal, differences, read_entries, revert

pytestmark = [pytest.mark.privileged, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def _userdel(*names: str) -> None:
    for name in names:
        subprocess.run(["userdel", "-r", "-f", name], check=False, capture_output=True)


def test_revert_removes_the_journaled_new_accounts_and_nothing_another_process_added():
    journal = AccountJournal().naming(users=["pvjlab1"], groups=["pvjlab1", "pvjlabgrp1"])
    try:
        subprocess.run(["useradd", "-m", "pvjlab1"], check=True)
        subprocess.run(["groupadd", "pvjlabgrp1"], check=True)
        # meanwhile another process manages its own accounts
        subprocess.run(["useradd", "-m", "pvjother1"], check=True)
        subprocess.run(["groupadd", "pvjothergrp1"], check=True)
        assert set(differences(journal)) >= {"/etc/passwd: pvjlab1 added"}
        report = revert(journal)
        assert report.users_deleted == ("pvjlab1",)
        assert report.groups_deleted == ("pvjlabgrp1",)
        assert differences(journal) == []
        users, groups = read_entries("/etc/passwd"), read_entries("/etc/group")
        assert "pvjlab1" not in users and "pvjlabgrp1" not in groups
        assert "pvjother1" in users and "pvjothergrp1" in groups
        assert "pvjother1" in read_entries("/etc/shadow")
        assert os.path.isdir("/home/pvjother1") and not os.path.exists("/home/pvjlab1")
    finally:
        _userdel("pvjlab1", "pvjother1")
        for group in ("pvjlabgrp1", "pvjothergrp1"):
            subprocess.run(["groupdel", "-f", group], check=False, capture_output=True)


def test_a_journaled_existing_entry_is_written_back_and_others_changes_are_kept():
    subprocess.run(["useradd", "-M", "-s", "/bin/bash", "pvjold1"], check=True)
    subprocess.run(["useradd", "-M", "-s", "/bin/bash", "pvjold2"], check=True)
    try:
        journal = AccountJournal().naming(users=["pvjold1"])
        line = read_entries("/etc/passwd")["pvjold1"]
        subprocess.run(["usermod", "-s", "/bin/sh", "pvjold1"], check=True)  # the lab's change
        subprocess.run(["usermod", "-s", "/bin/sh", "pvjold2"], check=True)  # someone else's
        assert differences(journal) == ["/etc/passwd: pvjold1 changed"]
        report = revert(journal)
        assert report.entries_restored == ("/etc/passwd:pvjold1",)
        assert report.users_deleted == ()
        users = read_entries("/etc/passwd")
        assert users["pvjold1"] == line and users["pvjold2"].endswith(":/bin/sh")
    finally:
        _userdel("pvjold1", "pvjold2")
