"""The baseline of persistence files: a changed file gets a new version (bounded, the oldest
go first), a revert finds the newest version older than the attack's write, a covered path
with no version then was absent, what is not kept is recorded and counted; the store is
written atomically, owner-only, and its version 1 fixture reads; a restarted agent keeps
the versions it had."""

import os
import stat
from pathlib import Path

import msgspec
import pytest

from provarmor.model.errors import StorageError
from provarmor.response.action import build_context
from provarmor.response.baseline import (
    Baseline,
    Coverage,
    FileHistory,
    FileState,
    FileVersion,
    Limits,
    expand,
    matches,
    observe,
    read_baseline,
    refresh,
    version_before,
    write_baseline,
)
from provarmor.response.policy import Mode, Policy
from provarmor.response.responder import Responder
from provarmor.response.settings import ResponseSettings

DATA = Path(__file__).parents[2] / "data" / "response"
LIMITS = Limits(versions=2, total_bytes=1000)
RC = "/home/dev/.bashrc"
PATTERNS = ("/home/dev/.bashrc", "/etc/cron.d/*")


def present(content: bytes, taken_ns: int, uid: int = 1000) -> FileVersion:
    import hashlib

    return FileVersion(
        taken_ns=taken_ns,
        state=FileState.PRESENT,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        uid=uid,
        gid=uid,
    )


def test_expand_puts_each_home_in_place_of_the_tilde():
    patterns = expand(("~/.bashrc", "/etc/crontab", "~/.bashrc"), ("/root", "/home/a[1]/"))
    assert patterns == ("/root/.bashrc", "/home/a[[]1]/.bashrc", "/etc/crontab")
    assert matches("/home/a[1]/.bashrc", patterns)
    assert matches("/etc/crontab", patterns)
    assert not matches("/home/a1/.bashrc", patterns)


def test_star_matches_within_one_segment_and_paths_must_be_normal():
    assert matches("/etc/cron.d/evil", PATTERNS)
    assert matches("/etc/cron.d/.hidden", PATTERNS)
    assert not matches("/etc/cron.d/sub/evil", PATTERNS)
    assert not matches("/etc/cron.d/../shadow", PATTERNS)
    assert not matches("etc/cron.d/evil", PATTERNS)


def test_a_change_is_a_new_version_and_an_unchanged_file_is_not():
    first, counts = refresh(
        Baseline(), {RC: present(b"a\n", 10)}, PATTERNS, now_ns=10, limits=LIMITS
    )
    same, _ = refresh(first, {RC: present(b"a\n", 20)}, PATTERNS, now_ns=20, limits=LIMITS)
    assert same == first and not counts
    changed, _ = refresh(first, {RC: present(b"a\nb\n", 30)}, PATTERNS, now_ns=30, limits=LIMITS)
    (history,) = changed.files
    assert [v.taken_ns for v in history.versions] == [10, 30]
    assert version_before(changed, RC, 25) == present(b"a\n", 10)
    assert version_before(changed, RC, 31) == present(b"a\nb\n", 30)
    assert version_before(changed, RC, 0) == present(b"a\nb\n", 30)
    assert version_before(changed, RC, 5) == f"no baseline of {RC} from before the write"


def test_an_owner_change_is_a_new_version():
    first, _ = refresh(Baseline(), {RC: present(b"a\n", 10)}, PATTERNS, now_ns=10, limits=LIMITS)
    chowned, _ = refresh(
        first, {RC: present(b"a\n", 20, uid=0)}, PATTERNS, now_ns=20, limits=LIMITS
    )
    assert len(chowned.files[0].versions) == 2


def test_the_oldest_versions_go_first_and_then_nothing_older_is_known():
    baseline = Baseline()
    for now in (10, 20, 30):
        observed = {RC: present(b"x" * now, now)}
        baseline, counts = refresh(baseline, observed, PATTERNS, now_ns=now, limits=LIMITS)
    (history,) = baseline.files
    assert [v.taken_ns for v in history.versions] == [20, 30] and history.truncated
    assert counts == {"baseline.versions_dropped": 1}
    assert "were dropped" in version_before(baseline, RC, 15)


def test_a_path_covered_before_the_write_with_no_version_was_absent():
    baseline, _ = refresh(Baseline(), {}, PATTERNS, now_ns=10, limits=LIMITS)
    assert baseline.files == ()
    absent = version_before(baseline, "/etc/cron.d/evil", 50)
    assert absent == FileVersion(taken_ns=10, state=FileState.ABSENT)
    assert isinstance(version_before(baseline, "/etc/cron.d/evil", 5), str)
    assert isinstance(version_before(baseline, "/etc/crontab", 50), str)
    appeared, _ = refresh(baseline, {RC: present(b"a\n", 60)}, PATTERNS, now_ns=60, limits=LIMITS)
    assert version_before(appeared, RC, 50).state is FileState.ABSENT
    gone, _ = refresh(appeared, {}, PATTERNS, now_ns=70, limits=LIMITS)
    assert version_before(gone, RC, 80).state is FileState.ABSENT
    assert version_before(gone, RC, 65) == present(b"a\n", 60)


def test_what_does_not_fit_is_recorded_as_not_kept_and_counted():
    small = Limits(versions=2, total_bytes=5)
    observed = {RC: present(b"abc\n", 10), "/etc/cron.d/job": present(b"* * * * * x\n", 10)}
    baseline, counts = refresh(Baseline(), observed, PATTERNS, now_ns=10, limits=small)
    assert counts == {"baseline.full": 1, "baseline.not_kept": 1}
    job = version_before(baseline, "/etc/cron.d/job", 20)
    assert job.state is FileState.NOT_KEPT and "full" in job.reason and job.content == b""
    again, counts = refresh(baseline, observed, PATTERNS, now_ns=20, limits=small)
    assert again == baseline and not counts  # counted once, not at every refresh


def test_histories_of_paths_no_longer_covered_are_dropped():
    baseline, _ = refresh(Baseline(), {RC: present(b"a\n", 10)}, PATTERNS, now_ns=10, limits=LIMITS)
    narrower, _ = refresh(baseline, {}, ("/etc/cron.d/*",), now_ns=20, limits=LIMITS)
    assert narrower.files == () and [c.pattern for c in narrower.covered] == ["/etc/cron.d/*"]
    assert narrower.covered[0].since_ns == 10


def test_observe_reads_regular_files_and_records_what_it_cannot_keep(tmp_path):
    (tmp_path / "rc").write_bytes(b"line\r\nno end")
    (tmp_path / "big").write_bytes(b"x" * 101)
    (tmp_path / "link").symlink_to(tmp_path / "rc")
    (tmp_path / "folder").mkdir()
    found = observe((str(tmp_path / "*"),), now_ns=7, file_bytes=100)
    assert sorted(found) == sorted(str(tmp_path / n) for n in ("rc", "big", "link", "folder"))
    assert found[str(tmp_path / "rc")].content == b"line\r\nno end"
    assert found[str(tmp_path / "big")].reason == "larger than 100 bytes"
    assert found[str(tmp_path / "link")].reason == "a symbolic link"
    assert found[str(tmp_path / "folder")].state is FileState.NOT_KEPT


def test_the_store_is_owner_only_and_round_trips(tmp_path):
    baseline, _ = refresh(
        Baseline(), {RC: present(b"\x00\xff bytes\n", 10)}, PATTERNS, now_ns=10, limits=LIMITS
    )
    path = tmp_path / "state" / "baseline.json"
    write_baseline(path, baseline)
    assert read_baseline(path) == baseline
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_baseline(tmp_path / "none.json") == Baseline()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b'{"format_version": 2, "files": []}', "format 2"),
        (b"{not json", "damaged"),
        (b'{"format_version": 1, "files": [{"path": 3}]}', "damaged"),
    ],
)
def test_a_damaged_or_newer_store_is_a_storage_error(tmp_path, text, words):
    path = tmp_path / "baseline.json"
    path.write_bytes(text)
    with pytest.raises(StorageError, match=words):
        read_baseline(path)


def test_the_version_1_fixture_reads():
    baseline = read_baseline(DATA / "baseline-v1.json")
    assert baseline.covered == (Coverage(pattern="/home/*/.bashrc", since_ns=1765000000000000000),)
    (history,) = baseline.files
    assert history == FileHistory(
        path="/home/dev/.bashrc",
        versions=(
            present(b"# ~/.bashrc\nalias ll='ls -l'\n", 1765000000000000000),
            FileVersion(
                taken_ns=1765000900000000000,
                state=FileState.NOT_KEPT,
                uid=1000,
                gid=1000,
                reason="larger than 262144 bytes",
            ),
        ),
    )


def test_the_baseline_survives_an_agent_restart(tmp_path):
    """The first agent takes version 1; the file changes; a restarted agent adds version 2
    and keeps version 1, which a revert of a write made before the change still finds."""
    rc = tmp_path / "home" / "dev" / ".bashrc"
    rc.parent.mkdir(parents=True)
    rc.write_bytes(b"one\n")
    settings = ResponseSettings(
        state_dir=tmp_path / "response", persistence_files=(str(tmp_path / "home/*/.bashrc"),)
    )
    first = Responder.open(Policy(mode=Mode.ENFORCE), build_context(settings))
    first.keep_baseline()
    taken = read_baseline(settings.baseline_file)
    rc.write_bytes(b"one\ntwo\n")
    again = Responder.open(Policy(mode=Mode.ENFORCE), build_context(settings))
    again.keep_baseline()
    after = read_baseline(settings.baseline_file)
    (history,) = after.files
    assert history.versions[0] == taken.files[0].versions[0]
    assert [v.content for v in history.versions] == [b"one\n", b"one\ntwo\n"]
    assert after.covered == taken.covered
    assert not os.path.exists(str(settings.baseline_file) + ".tmp")


def test_a_responder_with_policy_off_keeps_no_baseline(tmp_path):
    settings = ResponseSettings(state_dir=tmp_path / "response")
    responder = Responder.open(Policy(mode=Mode.OFF), build_context(settings))
    responder.keep_baseline()
    assert not settings.baseline_file.exists()


def test_a_damaged_stored_baseline_is_replaced_and_counted(tmp_path):
    settings = ResponseSettings(
        state_dir=tmp_path / "response", persistence_files=(str(tmp_path / "*.rc"),)
    )
    (tmp_path / "a.rc").write_bytes(b"a\n")
    settings.state_dir.mkdir()
    settings.baseline_file.write_bytes(b"{damaged")
    responder = Responder.open(Policy(mode=Mode.ENFORCE), build_context(settings))
    responder.keep_baseline()
    assert responder.counters["baseline.damaged"] == 1
    assert msgspec.json.decode(settings.baseline_file.read_bytes())["format_version"] == 1
    assert [h.path for h in read_baseline(settings.baseline_file).files] == [str(tmp_path / "a.rc")]


@pytest.mark.parametrize(("every", "versions"), [(1e-9, 2), (0.0, 1)])
def test_tick_refreshes_the_baseline_when_due_and_never_with_0(tmp_path, every, versions):
    rc = tmp_path / "a.rc"
    rc.write_bytes(b"a\n")
    settings = ResponseSettings(
        state_dir=tmp_path / "response",
        persistence_files=(str(tmp_path / "*.rc"),),
        baseline_refresh_seconds=every,
    )
    responder = Responder.open(Policy(mode=Mode.DRY_RUN), build_context(settings))
    responder.tick()
    assert not settings.baseline_file.exists()  # not kept until the agent takes it
    responder.keep_baseline()
    rc.write_bytes(b"a\nb\n")
    responder.tick()
    (history,) = read_baseline(settings.baseline_file).files
    assert len(history.versions) == versions
