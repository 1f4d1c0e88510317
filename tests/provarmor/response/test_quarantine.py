"""``quarantine`` moves a real file into the owner-only store; ``restore`` puts it back
byte-exact with its owner, group, mode (setuid included) and mtime."""

import hashlib
import os
import stat
from pathlib import Path

import msgspec
import pytest

from provarmor.response.quarantine import QUARANTINE, RESTORE, QuarantineRecord, read_record
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    FileTarget,
    Outcome,
    QuarantinedTarget,
)

pytestmark = pytest.mark.privileged
DATA = Path(__file__).parents[2] / "data" / "response"


def quarantine(context, path: Path):
    request = ActionRequest(
        id="q", kind=ActionKind.QUARANTINE, target=FileTarget(path=str(path)), requested_by="t"
    )
    return QUARANTINE.run(request, context)


def restore(context, target):
    request = ActionRequest(id="r", kind=ActionKind.RESTORE, target=target, requested_by="t")
    return RESTORE.run(request, context)


def implant(tmp_path: Path) -> Path:
    path = tmp_path / "drop" / "implant"
    path.parent.mkdir()
    path.write_bytes(os.urandom(300_000) + b"\x00tail")
    os.chown(path, 65534, 65534)
    os.chmod(path, 0o4751)
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    return path


def test_quarantine_and_restore_round_trip(context, tmp_path):
    path = implant(tmp_path)
    before = path.read_bytes()
    status = os.stat(path)
    result = quarantine(context, path)
    assert result.outcome is Outcome.DONE, result.message
    assert not os.path.lexists(path)
    assert isinstance(result.undo_target, QuarantinedTarget)
    store = context.settings.quarantine_dir
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    data = store / f"{result.undo_target.quarantine_id}.data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o600 and data.stat().st_uid == 0
    assert data.read_bytes() == before
    record = read_record(context, result.undo_target.quarantine_id)
    assert record.sha256 == hashlib.sha256(before).hexdigest()
    assert (record.uid, record.gid, record.mode, record.path) == (65534, 65534, 0o4751, str(path))

    back = restore(context, result.undo_target)
    assert back.outcome is Outcome.DONE, back.message
    after = os.stat(path)
    assert path.read_bytes() == before
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (65534, 65534, 0o4751)
    assert after.st_mtime_ns == status.st_mtime_ns
    assert list(store.iterdir()) == []


def test_restore_never_replaces_a_file_that_came_back(context, tmp_path):
    path = implant(tmp_path)
    result = quarantine(context, path)
    path.write_bytes(b"new")
    back = restore(context, result.undo_target)
    assert back.outcome is Outcome.FAILED and "exists again" in back.message
    assert path.read_bytes() == b"new"
    assert read_record(context, result.undo_target.quarantine_id).path == str(path)


def test_symbolic_links_and_folders_are_refused(context, tmp_path):
    real = implant(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(real)
    assert quarantine(context, link).outcome is Outcome.REFUSED
    assert quarantine(context, tmp_path).outcome is Outcome.REFUSED
    assert quarantine(context, Path("relative")).outcome is Outcome.REFUSED
    assert real.exists() and link.is_symlink()


def test_a_damaged_store_copy_is_not_restored(context, tmp_path):
    path = implant(tmp_path)
    result = quarantine(context, path)
    data = context.settings.quarantine_dir / f"{result.undo_target.quarantine_id}.data"
    data.write_bytes(b"tampered")
    back = restore(context, result.undo_target)
    assert back.outcome is Outcome.FAILED and "damaged" in back.message
    assert not os.path.lexists(path)
    assert [p.name for p in path.parent.iterdir()] == []


def test_restore_of_an_unknown_id_fails_clearly(context):
    for name in ("0" * 32, "../../etc/passwd"):
        back = restore(context, QuarantinedTarget(quarantine_id=name))
        assert back.outcome is Outcome.FAILED


def test_the_version_1_record_fixture_reads(context):
    fixture = DATA / "quarantine-record-v1.json"
    record = msgspec.json.decode(fixture.read_bytes(), type=QuarantineRecord)
    assert record.format_version == 1 and record.mode == 0o755
    store = context.settings.quarantine_dir
    store.mkdir(parents=True)
    (store / f"{record.id}.json").write_bytes(fixture.read_bytes())
    assert read_record(context, record.id) == record
