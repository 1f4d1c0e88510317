"""Undo whatever a crashed or killed lab run left behind.

Every run persists, before it changes anything, a state file (its artifacts and cgroups) and
a snapshot of the watched system files under ``/var/lib/provarmor/lab/``. :func:`cleanup`
kills every process in a leftover ``provarmor-lab-*`` cgroup, deletes every
``provarmor-lab-*`` network namespace and ``pvl*`` link, deletes the recorded artifacts and
restores the snapshots (which also reverts the accounts their journals name: the users and
groups the run created are deleted, nothing else). It must not run while
a lab run is in progress: it would tear that run down too.
"""

from __future__ import annotations

import contextlib

import msgspec

from provarmor.lab import snapshot
from provarmor.lab.environment import STATE_DIR, RunState, remove_artifacts
from provarmor.lab.jail import cleanup_jails
from provarmor.lab.netns import cleanup_network


def _remove_run_artifacts() -> list[str]:
    removed: list[str] = []
    if not STATE_DIR.is_dir():
        return removed
    for path in sorted(STATE_DIR.glob("state-*.json")):
        with contextlib.suppress(OSError, msgspec.DecodeError, msgspec.ValidationError):
            state = msgspec.json.decode(path.read_bytes(), type=RunState)
            removed += remove_artifacts(state.artifacts)
        path.unlink(missing_ok=True)
    return removed


def cleanup() -> list[str]:
    """Remove every trace of earlier lab runs; returns a line per thing removed or restored."""
    removed = cleanup_jails()
    removed += cleanup_network()
    removed += _remove_run_artifacts()
    removed += snapshot.restore_leftovers()
    return removed
