"""State that only its owner may read: folders made 0700 (every level made) and files 0600,
whatever the umask."""

import os
import stat

import pytest

from provarmor.storage.private import private_dir, private_file


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    """The usual umask (022): without care, new files would be 0644 and folders 0755."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_private_dir_makes_every_missing_level_0700(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    private_dir(target)
    for level in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert _mode(level) == 0o700, level
    private_dir(target)  # again: nothing to do


def test_private_file_is_0600_and_left_alone_when_present(tmp_path):
    path = tmp_path / "x.db"
    private_file(path)
    assert _mode(path) == 0o600
    path.write_bytes(b"kept")
    private_file(path)
    assert path.read_bytes() == b"kept"
