"""Folders and files only their owner may read: state directories (0700) and database files
(0600), made so whatever the process's umask.

Events, graphs and tokens' hashes describe a host in detail, so nothing of them is left
world-readable. SQLite makes its journal files (``-wal``, ``-shm``) with the mode of the
database file, so a database made here keeps them private too. Existing folders and files
keep their modes: a state directory may be a path the operator chose for other things too.
"""

from __future__ import annotations

import os
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Make ``path`` and every missing folder above it with mode 0700."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIRECTORY_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process
        os.chmod(directory, DIRECTORY_MODE)  # mkdir's mode is masked by the umask


def private_file(path: Path) -> None:
    """Make ``path`` empty with mode 0600 unless it exists."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.fchmod(descriptor, FILE_MODE)
    os.close(descriptor)
