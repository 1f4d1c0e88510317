"""Forks whose creator exited before the child first ran (provarmor.sources.ebpf.forks,
through the decoder): the fork event names the creator (from its own ``J`` record), whatever
order the two sides arrive in. Fixture: a real capture of ``sh -c 'nohup sh -c "..." &'``
(tests/data/ebpf/reparent.ndjson)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.sources.ebpf.decoder import MAX_PENDING, DecoderContext, EbpfCounters, EbpfDecoder
from provarmor.sources.ebpf.wire import Header, parse_line
from provarmor.sources.procfs import HostIdentity, ProcClock

DATA = Path(__file__).resolve().parents[3] / "data" / "ebpf"
META = json.loads((DATA / "reparent.json").read_text())
ROOTS: list[int] = META["roots"]
LINES = (DATA / "reparent.ndjson").read_bytes().splitlines()


def _context() -> DecoderContext:
    return DecoderContext(
        host=HostIdentity(id=META["host_id"], boot_id=META["boot_id"], name="fixture"),
        clock=ProcClock(btime=META["btime"], clk_tck=META["clk_tck"]),
        monotonic_offset_ns=META["monotonic_offset_ns"],
        id_prefix="t-",
        source="reparent.ndjson",
    )


def _decode(lines: list[bytes]) -> tuple[list[Event], EbpfCounters]:
    decoder = EbpfDecoder(_context())
    events: list[Event] = []
    for number, line in enumerate(lines, start=1):
        events.extend(decoder.feed(line, number))
    events.extend(decoder.finish())
    return events, decoder.counters


def _header(line: bytes) -> Header | None:
    parsed = parse_line(line)
    return parsed if isinstance(parsed, Header) else None


def _at(kind: str, pid: int) -> int:
    """Index of the first ``kind`` record of process ``pid``."""
    for index, line in enumerate(LINES):
        header = _header(line)
        if header is not None and (header.kind, header.pid) == (kind, pid):
            return index
    raise AssertionError(f"no {kind} record of {pid}")


def _adopted() -> tuple[int, int]:
    """(creator, child): the recorded fork whose child named init as its parent."""
    found = []
    for line in LINES:
        header = _header(line)
        if header is not None and header.kind == "F" and header.values[0] == 1:
            found.append(header.pid)
    assert len(found) == 1, found
    child = found[0]
    creator = next(
        h.pid
        for h in map(_header, LINES)
        if h is not None and h.kind == "J" and h.values[0] == child
    )
    return creator, child


CREATOR, CHILD = _adopted()


def _of(events: list[Event], action: Action, pid: int) -> list[Event]:
    return [e for e in events if e.event.action == action and e.process.pid == pid]


def _creator_id(events: list[Event]) -> str:
    (shell,) = _of(events, Action.EXEC, CREATOR)
    return shell.process.entity_id


def _assert_child_belongs_to_creator(events: list[Event]) -> None:
    creator_id = _creator_id(events)
    (fork,) = _of(events, Action.FORK, CHILD)
    assert fork.process.parent is not None
    assert (fork.process.parent.pid, fork.process.parent.entity_id) == (CREATOR, creator_id)
    # what the child inherited is the creator's, not init's (/process_api ... on the VM)
    assert fork.process.executable == "/usr/bin/sh"
    assert fork.process.args == ("sh", "-c", META["command"])
    execs = _of(events, Action.EXEC, CHILD)
    assert [e.process.args[0] for e in execs] == ["nohup", "sh"]
    assert all(e.process.parent and e.process.parent.entity_id == creator_id for e in execs)
    assert events.index(fork) < events.index(execs[0])
    (cat,) = [
        e
        for e in events
        if e.event.action == Action.EXEC
        and e.process.parent
        and e.process.parent.pid == CHILD
        and e.process.args == ("cat", "/etc/hostname")
    ]
    assert cat.process.parent is not None
    assert cat.process.parent.entity_id == execs[-1].process.entity_id


def test_creator_record_first_as_recorded() -> None:
    assert _at("J", CREATOR) < _at("F", CHILD)
    events, counters = _decode(LINES)
    _assert_child_belongs_to_creator(events)
    assert (counters.fork_parent_fixed, counters.fork_parent_unconfirmed) == (1, 0)
    assert (counters.fork_parent_late, counters.fork_parent_dropped) == (0, 0)
    assert counters.exec_parent_fixed >= 2  # the child's own execs name init too
    assert (counters.parse_errors, counters.incomplete) == (0, 0)


def test_child_record_first_is_held_until_the_creator_record() -> None:
    creator_at = _at("J", CREATOR)
    last_exec = max(
        i
        for i, line in enumerate(LINES)
        if (h := _header(line)) is not None and (h.kind, h.pid) == ("E", CHILD)
    )
    assert creator_at < _at("F", CHILD) < last_exec
    moved = LINES[creator_at]
    reordered = [*LINES[:creator_at], *LINES[creator_at + 1 : last_exec + 1], moved]
    reordered += LINES[last_exec + 1 :]
    events, counters = _decode(reordered)
    _assert_child_belongs_to_creator(events)
    assert (counters.fork_parent_fixed, counters.fork_parent_unconfirmed) == (1, 0)
    assert (counters.parse_errors, counters.incomplete) == (0, 0)


def test_every_root_is_the_parent_of_its_nohup_child() -> None:
    events, _counters = _decode(LINES)
    forks = [e for e in events if e.event.action == Action.FORK]
    assert len({e.process.pid for e in forks}) == len(forks)  # one fork per child
    for root in ROOTS:
        children = [e for e in forks if e.process.parent and e.process.parent.pid == root]
        assert [e.process.args[-1] for e in children] == [META["command"]]
    assert not [e for e in forks if e.process.parent and e.process.parent.pid == 1]


def test_without_the_creator_record_the_fork_is_released_at_the_deadline() -> None:
    lines = [line for index, line in enumerate(LINES) if index != _at("J", CREATOR)]
    decoder = EbpfDecoder(_context())
    events: list[Event] = []
    released_by = b""
    for number, line in enumerate(lines, start=1):
        out = decoder.feed(line, number)
        if _of(out, Action.FORK, CHILD):
            released_by = line
        events += out
    header = _header(released_by)
    assert header is not None and header.kind == "h"  # a heartbeat, not the end
    assert header.ns - _header(LINES[_at("F", CHILD)]).ns > _context().reparent_ns  # type: ignore[union-attr]
    (fork,) = _of(events, Action.FORK, CHILD)
    assert fork.process.parent is not None and fork.process.parent.pid == 1
    counters = decoder.counters
    assert counters.fork_parent_unconfirmed == 1 and counters.fork_parent_fixed == 0
    execs = _of(events, Action.EXEC, CHILD)
    assert [e.process.args[0] for e in execs] == ["nohup", "sh"]
    assert events.index(fork) < events.index(execs[0])
    assert counters.incomplete == 0


def test_a_creator_record_after_the_deadline_corrects_later_execs_only() -> None:
    creator_at = _at("J", CREATOR)
    lines = [*LINES[:creator_at], *LINES[creator_at + 1 :], LINES[creator_at]]
    events, counters = _decode(lines)
    assert len(_of(events, Action.FORK, CHILD)) == 1
    assert (counters.fork_parent_late, counters.fork_parent_unconfirmed) == (1, 1)


def _record(*fields: object) -> bytes:
    text = "\\t".join(str(field) for field in fields)
    return b'{"type": "printf", "data": "' + text.encode() + b'\\n"}'


_START = 7_000_000_000


def _fork(ns: int, child: int, parent: int) -> bytes:
    return _record("F", ns, child, child, _START + child, parent, _START + parent, 0, 0, 0, 0, "")


def _creator(ns: int, parent: int, child: int, level: int = 0) -> bytes:
    return _record("J", ns, parent, parent, _START + parent, child, level, "")


def _parents(events: list[Event]) -> dict[int, int]:
    return {
        e.process.pid: e.process.parent.pid
        for e in events
        if e.event.action == Action.FORK and e.process.parent is not None
    }


def test_a_subreaper_is_learned_and_its_next_adoptions_wait() -> None:
    """A creator 400 forks 401 and exits: 401 names subreaper 300 (not init), so the
    first time only the creator record arriving first saves it; then 300 is known."""
    lines = [
        _creator(100, 400, 401),
        _fork(110, 401, 300),
        _fork(210, 402, 300),
        _creator(200, 400, 402),
        _fork(310, 403, 300),  # a child 300 really made: waits briefly, then confirmed
        _creator(300, 300, 403),
    ]
    events, counters = _decode(lines)
    assert _parents(events) == {401: 400, 402: 400, 403: 300}
    assert (counters.fork_parent_fixed, counters.fork_parent_unconfirmed) == (2, 0)


def test_creator_records_from_a_pid_namespace_are_skipped() -> None:
    events, counters = _decode([_creator(100, 400, 5, level=1), _fork(110, 5, 1)])
    assert _parents(events) == {5: 1}
    assert counters.skipped["fork_creator_in_pid_namespace"] == 1
    assert counters.fork_parent_unconfirmed == 1  # released by finish()


@pytest.mark.parametrize("extra", [1, 3])
def test_waiting_creator_records_are_bounded_and_drops_counted(extra: int) -> None:
    lines = [_creator(100 + i, 400, 10_000 + i) for i in range(MAX_PENDING + extra)]
    events, counters = _decode([*lines, _fork(200_000, 10_000 + MAX_PENDING, 1)])
    assert counters.fork_parent_dropped == extra
    assert _parents(events) == {10_000 + MAX_PENDING: 400}


def test_an_exit_while_the_fork_is_held_follows_the_fork() -> None:
    exit_ = _record("Q", 130, 401, 401, _START + 401, 0, "")
    events, counters = _decode([_fork(110, 401, 1), exit_, _creator(100, 400, 401)])
    assert [(e.event.action, e.process.pid) for e in events] == [
        (Action.FORK, 401),
        (Action.EXIT, 401),
    ]
    assert _parents(events) == {401: 400}
    assert counters.fork_parent_fixed == 1


def _argv_block(pid: int) -> set[int]:
    """Indexes of the first argv of ``pid``: its ``V`` header and the strings before it."""
    at = _at("V", pid)
    header = _header(LINES[at])
    assert header is not None
    prefix = b'{"type": "printf", "data": "s\\t%d\\t%d\\t' % (header.tid, header.ns)
    return {at, *(i for i in range(at) if LINES[i].startswith(prefix))}


@pytest.mark.parametrize("after", [("F", CHILD), ("E", CHILD)])
def test_a_fork_waits_for_the_parents_exec_whose_argv_comes_later(after: tuple[str, int]) -> None:
    """The creator's argv (sent at ``sys_enter_execve``, maybe from another CPU's buffer)
    arrives after its child's fork record: the fork waits for the creator's exec, so the
    child inherits the creator's new program, not the one it had before the exec."""
    moved = _argv_block(CREATOR)
    assert len(moved) == 4  # sh, -c, the command, V
    block = [line for i, line in enumerate(LINES) if i in moved]
    rest = [line for i, line in enumerate(LINES) if i not in moved]
    at = max(
        i
        for i, line in enumerate(rest)
        if (h := _header(line)) is not None and (h.kind, h.pid) == after
    )
    events, counters = _decode([*rest[: at + 1], *block, *rest[at + 1 :]])
    _assert_child_belongs_to_creator(events)
    (shell,) = _of(events, Action.EXEC, CREATOR)
    assert shell.process.args == ("sh", "-c", META["command"])
    assert (counters.parse_errors, counters.incomplete) == (0, 0)
