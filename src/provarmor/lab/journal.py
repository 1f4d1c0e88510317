"""The host's journal for scenarios recorded with host logs: systemd-journald, standalone.

This machine's PID 1 is not systemd, but ``/lib/systemd/systemd-journald`` runs on its own
(volatile storage) and then serves ``journalctl``; ``/dev/log`` pointed at its socket makes
``syslog(3)`` callers (sshd, sudo, PAM) write to it. :class:`HostJournal` starts it when no
journald runs and undoes exactly what it made on :meth:`stop`; when one runs already, it
uses that one and changes nothing. A ``/dev/log`` of another syslog daemon without journald
is refused: the lines the scenario needs would not reach the journal.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

from provarmor.model.errors import ProvArmorError

JOURNALD = Path("/lib/systemd/systemd-journald")
JOURNAL_DIR = Path("/run/systemd/journal")
DEV_LOG = Path("/dev/log")
RUNTIME_LOGS = Path("/run/log/journal")
"""Where volatile journal files go."""
CONFIG_DIR = Path("/run/systemd/journald.conf.d")
CONFIG = "[Journal]\nStorage=volatile\nRateLimitBurst=0\nReadKMsg=no\nAudit=no\n"
"""Volatile, never rate-limited, and no kernel or audit reading (those belong to others)."""
START_TIMEOUT_S = 10.0


class HostJournal:
    """A running journald for the lab run (started here only when none runs)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._made: list[Path] = []

    @property
    def started_here(self) -> bool:
        return self._process is not None

    def start(self) -> None:
        if (JOURNAL_DIR / "socket").exists():
            return
        if not JOURNALD.exists():
            raise ProvArmorError("systemd-journald is not installed", location=str(JOURNALD))
        if DEV_LOG.exists() or DEV_LOG.is_symlink():
            raise ProvArmorError(
                "another syslog daemon owns /dev/log without journald: its lines would not "
                "reach the journal the lab records",
                location=str(DEV_LOG),
            )
        self._make_dir(CONFIG_DIR)
        config = CONFIG_DIR / "provarmor-lab.conf"
        config.write_text(CONFIG)
        self._made.append(config)
        self._made += [path for path in (JOURNAL_DIR, RUNTIME_LOGS) if not path.exists()]
        self._process = subprocess.Popen(
            [str(JOURNALD)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (JOURNAL_DIR / "dev-log").exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ProvArmorError("systemd-journald did not start", location=str(JOURNALD))
            time.sleep(0.05)
        DEV_LOG.symlink_to(JOURNAL_DIR / "dev-log")
        self._made.append(DEV_LOG)

    def _make_dir(self, path: Path) -> None:
        for folder in reversed((path, *path.parents)):
            if not folder.exists():
                folder.mkdir()
                self._made.append(folder)

    def stop(self) -> None:
        """Stop the journald started here and remove what was made for it; never raises."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        for path in reversed(self._made):
            with contextlib.suppress(OSError):
                if path.is_symlink() or path.is_file():
                    path.unlink()
                elif path.is_dir():
                    shutil.rmtree(path)
        self._made.clear()
