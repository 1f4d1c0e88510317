"""The host journal the lab starts for scenarios recorded with host logs (root, real
systemd-journald; run under the shared lock, as /dev/log is the machine's)."""

import json
import os
import subprocess
import time
import uuid

import pytest

from provarmor.lab.journal import CONFIG_DIR, DEV_LOG, JOURNAL_DIR, JOURNALD, HostJournal

pytestmark = pytest.mark.privileged


@pytest.fixture
def no_journal():
    if os.geteuid() != 0:
        pytest.skip("starting journald needs root")
    if not JOURNALD.exists():
        pytest.skip(f"{JOURNALD} is not installed (scripts/bootstrap.sh dev)")
    if (JOURNAL_DIR / "socket").exists():
        pytest.skip("a journald runs already (the lab then uses it and starts none)")
    if DEV_LOG.exists() or DEV_LOG.is_symlink():
        pytest.skip("another syslog daemon owns /dev/log (the lab refuses to start then)")


def _journal_has(marker: str, *, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["journalctl", "-o", "json", "--no-pager", f"SYSLOG_IDENTIFIER={marker}"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        if any(entry.get("MESSAGE") == "hello" for entry in lines):
            return True
        time.sleep(0.1)
    return False


def test_a_started_journal_takes_syslog_lines_and_leaves_nothing_behind(no_journal):
    before = (DEV_LOG.exists() or DEV_LOG.is_symlink(), CONFIG_DIR.exists(), JOURNAL_DIR.exists())
    journal = HostJournal()
    journal.start()
    try:
        assert journal.started_here
        marker = f"pa-journal-{uuid.uuid4().hex[:8]}"
        subprocess.run(["logger", "-t", marker, "hello"], check=True, timeout=10)
        assert _journal_has(marker)
    finally:
        journal.stop()
    after = (DEV_LOG.exists() or DEV_LOG.is_symlink(), CONFIG_DIR.exists(), JOURNAL_DIR.exists())
    assert after == before
    journal.stop()  # a second stop changes nothing and does not raise
