"""The decoder on real recorded bpftrace output (tests/data/ebpf), without root."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.model.actions import Action
from provarmor.model.event import Endpoint, Event
from provarmor.model.ids import process_entity_id
from provarmor.sources.ebpf.decoder import (
    TTY_BEFORE_EXEC_NS,
    DecoderContext,
    EbpfCounters,
    EbpfDecoder,
)
from provarmor.sources.ebpf.settings import EbpfSettings
from provarmor.sources.ebpf.wire import Header, parse_line
from provarmor.sources.procfs import HostIdentity, ProcClock, ProcessInfo
from provarmor.sources.procnet import ServerRole

DATA = Path(__file__).resolve().parents[3] / "data" / "ebpf"
META = json.loads((DATA / "scenario.json").read_text())
PORT = META["port"]
WORK = META["workdir"]
ROOTS: dict[str, int] = META["roots"]


def _context() -> DecoderContext:
    return DecoderContext(
        host=HostIdentity(id=META["host_id"], boot_id=META["boot_id"], name="fixture"),
        clock=ProcClock(btime=META["btime"], clk_tck=META["clk_tck"]),
        monotonic_offset_ns=META["monotonic_offset_ns"],
        id_prefix="t-",
        source="scenario.ndjson",
    )


def _decode(lines: list[bytes], *, reorder_ns: int = 0) -> tuple[list[Event], EbpfCounters]:
    decoder = EbpfDecoder(dataclasses.replace(_context(), reorder_ns=reorder_ns))
    events: list[Event] = []
    for number, line in enumerate(lines, start=1):
        events.extend(decoder.feed(line, number))
    events.extend(decoder.finish())
    return events, decoder.counters


def _lines(name: str) -> list[bytes]:
    return (DATA / name).read_bytes().splitlines()


@dataclass
class Decoded:
    events: list[Event]
    counters: EbpfCounters

    def of(self, action: Action, pid: int | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if e.event.action == action and (pid is None or e.process.pid == pid)
        ]

    def exec_by_args(self, *args: str) -> Event:
        found = [e for e in self.of(Action.EXEC) if e.process.args == args]
        assert len(found) == 1, args
        return found[0]


@pytest.fixture(scope="module")
def scenario() -> Decoded:
    return Decoded(*_decode(_lines("scenario.ndjson")))


def test_every_line_parses_and_every_event_is_counted(scenario: Decoded) -> None:
    assert scenario.counters.lines == len(_lines("scenario.ndjson"))
    assert scenario.counters.parse_errors == 0, scenario.counters.errors
    assert scenario.counters.events == len(scenario.events)
    assert scenario.counters.lost == 0 and scenario.counters.incomplete == 0
    assert all(e.event.dataset == "ebpf" for e in scenario.events)
    assert len({e.event.id for e in scenario.events}) == len(scenario.events)


def test_pipeline_identity_is_shared_by_fork_exec_and_exit(scenario: Decoded) -> None:
    shell = scenario.of(Action.EXEC, ROOTS["pipeline"])
    assert [e.process.args for e in shell] == [("sh", "-c", "cat /etc/hostname | wc -c")]
    shell_id = shell[0].process.entity_id
    cat = scenario.exec_by_args("cat", "/etc/hostname")
    wc = scenario.exec_by_args("wc", "-c")
    for child in (cat, wc):
        assert child.process.parent is not None
        assert (child.process.parent.entity_id, child.process.parent.pid) == (
            shell_id,
            ROOTS["pipeline"],
        )
        assert child.process.parent.executable == "/usr/bin/sh"
        fork = scenario.of(Action.FORK, child.process.pid)
        assert [e.process.entity_id for e in fork] == [child.process.entity_id]
        exits = scenario.of(Action.EXIT, child.process.pid)
        assert [e.process.entity_id for e in exits] == [child.process.entity_id]
    assert cat.process.working_directory == WORK
    assert cat.file is not None and cat.file.path == "/usr/bin/cat"


def test_start_time_and_entity_id_follow_proc_rounding(scenario: Decoded) -> None:
    cat = scenario.exec_by_args("cat", "/etc/hostname")
    line = next(
        line
        for line in _lines("scenario.ndjson")
        if line.startswith(b'{"type": "printf", "data": "E') and b"/usr/bin/cat" in line
    )
    boottime_ns = int(line.split(b"\\t")[4])
    ticks = boottime_ns // 10_000_000
    start = META["btime"] * 1_000_000_000 + ticks * 10_000_000
    assert cat.process.start == start
    assert cat.process.entity_id == process_entity_id(
        host_id="fixture-host", boot_id=META["boot_id"], pid=cat.process.pid, start=start
    )
    assert cat.timestamp == int(line.split(b"\\t")[1]) + META["monotonic_offset_ns"]


def test_curl_exec_connect_and_received_bytes(scenario: Decoded) -> None:
    url = f"http://127.0.0.1:{PORT}/"
    curl = scenario.exec_by_args("curl", "-s", "-o", "/dev/null", url)
    shell = scenario.of(Action.EXEC, ROOTS["curl"])
    assert curl.process.parent is not None
    assert curl.process.parent.entity_id == shell[0].process.entity_id
    pid = curl.process.pid
    connects = [e for e in scenario.of(Action.CONNECT, pid) if e.destination and e.destination.ip]
    assert len(connects) == 1
    connect = connects[0]
    assert connect.destination is not None and connect.source is not None
    assert (connect.destination.ip, connect.destination.port) == ("127.0.0.1", PORT)
    assert connect.source.ip == "127.0.0.1" and connect.source.port > 0
    assert connect.event.outcome == "unknown"  # non-blocking: EINPROGRESS
    nscd = [e for e in scenario.of(Action.CONNECT, pid) if e.destination and e.destination.address]
    assert {(e.destination.address, e.event.outcome) for e in nscd if e.destination} == {
        ("/var/run/nscd/socket", "failure")
    }
    recv = scenario.of(Action.RECV, pid)
    assert len(recv) == 1
    assert recv[0].destination == connect.destination and recv[0].source == connect.source
    assert recv[0].network is not None
    assert (recv[0].network.bytes, recv[0].network.direction) == (1152, "ingress")


def test_file_operations_resolve_against_the_working_directory(scenario: Decoded) -> None:
    assert f"{WORK}/b" in [e.file.path for e in scenario.of(Action.CREATE) if e.file]
    chmod = scenario.of(Action.CHMOD)
    assert [(e.file.path, e.file.mode, e.process.name) for e in chmod if e.file] == [
        (f"{WORK}/b", 0o640, "chmod")
    ]
    rename = scenario.of(Action.RENAME)
    assert [(e.file.original_path, e.file.path) for e in rename if e.file] == [
        (f"{WORK}/b", f"{WORK}/c")
    ]
    delete = scenario.of(Action.DELETE)
    assert [(e.file.path, e.event.outcome) for e in delete if e.file] == [(f"{WORK}/c", "success")]


def test_hostile_argv_round_trips_exactly(scenario: Decoded) -> None:
    echo = scenario.of(Action.EXEC, ROOTS["hostile"])
    assert len(echo) == 1
    expected = [arg.encode("utf-8", "surrogateescape") for arg in META["hostile"]]
    rendered = tuple(arg.decode("utf-8", "backslashreplace") for arg in expected)
    assert echo[0].process.args == ("/bin/echo", *rendered)
    assert echo[0].process.args[2] == "new\nline"
    assert echo[0].process.args[5] == "\\xff\\xfe\x01\x1b"


def test_socket_client_sends_are_aggregated(scenario: Decoded) -> None:
    client = ROOTS["client"]
    connect = scenario.of(Action.CONNECT, client)
    assert len(connect) == 1 and connect[0].event.outcome == "success"
    sends = scenario.of(Action.SEND, client)
    assert [(e.event.count, e.network.bytes if e.network else 0) for e in sends] == [(3, 3000)]
    assert sends[0].destination == connect[0].destination
    assert sends[0].network is not None and sends[0].network.direction == "egress"


def test_aggregated_flows_carry_the_time_of_their_first_and_last_byte() -> None:
    """The flush prints when each flow's first and last byte went (``@if``/``@il``) just
    before its byte counts: the recv is stamped with its first byte, not the flush."""
    lines = _lines("scenario.ndjson")
    flush = next(i for i, line in enumerate(lines) if b'"@io0"' in line)
    curl_key = next(key for key in json.loads(lines[flush])["data"]["@io0"] if key.endswith(",1"))
    curl_pid = int(curl_key.split(",")[0])
    connect_ns = next(
        int(line.split(b"\\t")[1])
        for line in lines
        if b'"data": "N\\t' in line
        and int(line.split(b"\\t")[3]) == curl_pid
        and b"127.0.0.1" in line
    )
    first, last = connect_ns + 40_000, connect_ns + 90_000
    times = [
        json.dumps({"type": "map", "data": {"@if0": {curl_key: first}}}).encode(),
        json.dumps({"type": "map", "data": {"@il0": {curl_key: last}}}).encode(),
    ]
    decoded = Decoded(*_decode([*lines[:flush], *times, *lines[flush:]]))
    assert decoded.counters.parse_errors == 0, decoded.counters.errors
    offset = META["monotonic_offset_ns"]
    [recv] = decoded.of(Action.RECV, curl_pid)
    assert (recv.timestamp, recv.event.end) == (first + offset, last + offset)
    [connect] = [e for e in decoded.of(Action.CONNECT, curl_pid) if e.destination.ip]
    assert connect.timestamp < recv.timestamp < recv.event.end
    # a capture from before the time maps: the flush time, as before (and the end with it)
    [old] = Decoded(*_decode(lines)).of(Action.RECV, curl_pid)
    assert old.event.end == old.timestamp > recv.event.end
    # at exit bpftrace prints every map by name: both generations' times, then the counts
    stats = json.loads(lines[flush])["data"]["@io0"][curl_key]
    exit_print = [
        json.dumps({"type": "map", "data": {name: {curl_key: ns}}}).encode()
        for name, ns in (("@if0", first), ("@if1", last + 5), ("@il0", last), ("@il1", last + 9))
    ]
    exit_print += [
        json.dumps({"type": "stats", "data": {name: {curl_key: stats}}}).encode()
        for name in ("@io0", "@io1")
    ]
    decoded = Decoded(*_decode([*lines[:flush], *exit_print, *lines[flush + 1 :]]))
    spans = [
        (e.timestamp - offset, e.event.end - offset) for e in decoded.of(Action.RECV, curl_pid)
    ]
    assert spans == [(first, last), (last + 5, last + 9)]


def test_libraries_mapped_executable_are_resolved_through_opens(scenario: Decoded) -> None:
    cat = scenario.exec_by_args("cat", "/etc/hostname")
    mapped = [e.file.path for e in scenario.of(Action.MMAP_EXEC, cat.process.pid) if e.file]
    assert mapped == ["/lib/x86_64-linux-gnu/libc.so.6"]
    curl = scenario.exec_by_args("curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{PORT}/")
    mapped = [e.file.path for e in scenario.of(Action.MMAP_EXEC, curl.process.pid) if e.file]
    assert "/lib/x86_64-linux-gnu/libcurl.so.4" in mapped  # opened through its symlink
    assert all(path.startswith("/") for path in mapped)


def test_lost_events_become_a_counted_gap() -> None:
    lines = _lines("lost.ndjson")
    reported = [json.loads(line)["data"]["events"] for line in lines if b"lost_events" in line]
    assert len(reported) == 1 and reported[0] > 0
    events, counters = _decode(lines)
    gaps = [e for e in events if e.event.action == Action.GAP]
    assert [gap.event.count for gap in gaps] == reported
    assert (counters.lost, counters.gaps, counters.parse_errors) == (reported[0], 1, 0)
    assert gaps[0].process.entity_id == "" and gaps[0].process.pid == 0


@pytest.mark.parametrize("missing", [0, 5])
def test_records_printed_but_never_received_are_a_gap_at_the_end(missing: int) -> None:
    lines = _lines("scenario.ndjson")
    printed = sum(1 for line in lines if line.startswith(b'{"type": "printf"'))
    total = b'{"type": "map", "data": {"@records": %d}}' % (printed + missing)
    events, counters = _decode([*lines, total])
    gaps = [e.event.count for e in events if e.event.action == Action.GAP]
    assert gaps == ([missing] if missing else [])
    assert (counters.unreported, counters.lost) == (missing, missing)


def test_exec_arriving_before_its_argv_is_held_back_until_it_comes() -> None:
    lines = _lines("scenario.ndjson")
    argv_at = next(i for i, line in enumerate(lines) if b'"data": "V\\t' in line)
    tid = lines[argv_at].split(b"\\t")[2]
    strings = [
        i
        for i in range(argv_at)
        if lines[i].startswith(b'{"type": "printf", "data": "s\\t' + tid + b"\\t")
        and lines[i].split(b"\\t")[2] == lines[argv_at].split(b"\\t")[1]
    ]
    block = [lines[i] for i in [*strings, argv_at]]
    rest = [line for i, line in enumerate(lines) if i not in set(strings) | {argv_at}]
    exec_at = next(i for i, line in enumerate(rest) if b'"data": "E\\t' in line)
    reordered = rest[: exec_at + 1] + block + rest[exec_at + 1 :]
    events, counters = _decode(reordered)
    original = Decoded(*_decode(lines)).of(Action.EXEC)
    assert [e.process.args for e in Decoded(events, counters).of(Action.EXEC)] == [
        e.process.args for e in original
    ]
    assert counters.incomplete == 0


def test_exec_arriving_before_the_fork_keeps_what_the_exec_said() -> None:
    lines = _lines("scenario.ndjson")
    cat_exec = next(i for i, line in enumerate(lines) if b"\\t/usr/bin/cat\\n" in line)
    cat_pid = lines[cat_exec].split(b"\\t")[3]
    fork_at = next(
        i
        for i, line in enumerate(lines)
        if b'"data": "F\\t' in line and line.split(b"\\t")[3] == cat_pid
    )
    reordered = [*lines[:fork_at], *lines[fork_at + 1 : cat_exec + 1], lines[fork_at]]
    reordered += lines[cat_exec + 1 :]
    decoded = Decoded(*_decode(reordered))
    cat = decoded.exec_by_args("cat", "/etc/hostname")
    fork = decoded.of(Action.FORK, cat.process.pid)
    assert [e.process.entity_id for e in fork] == [cat.process.entity_id]
    assert fork[0].process.executable == "/usr/bin/sh"  # what the child inherited
    later = decoded.of(Action.OPEN, cat.process.pid)
    assert later and {e.process.executable for e in later} == {"/usr/bin/cat"}
    assert {e.process.args for e in later} == {("cat", "/etc/hostname")}


def _record(*fields: object) -> bytes:
    """A printf line as bpftrace writes it (numbers and plain ASCII need no escaping)."""
    text = "\\t".join(str(field) for field in fields)
    return b'{"type": "printf", "data": "' + text.encode() + b'\\n"}'


def test_argv_of_a_failed_execve_arriving_late_is_not_used() -> None:
    """execve #1 fails (ENOENT) and its X record overtakes its argv (another CPU); execve #2
    succeeds and its exec record overtakes ITS argv: #2 must not get #1's argv."""
    tid, start = 4242, 5_000_000_000
    lines = [
        _record("X", 150, tid, tid, start, -2, "/usr/local/bin/tool"),
        _record("s", tid, 100, "tool"),
        _record("s", tid, 100, "--old"),
        _record("V", 100, tid, tid, start, 2, 0, ""),
        _record("Z", 290, tid, tid, start, 1, ""),
        _record("E", 300, tid, tid, start, tid, 1, 1_000_000_000, 0, 0, 0, 0, "/usr/bin/tool"),
        _record("s", tid, 200, "tool"),
        _record("s", tid, 200, "--new"),
        _record("V", 200, tid, tid, start, 2, 0, ""),
    ]
    events, counters = _decode(lines)
    execs = [e for e in events if e.event.action == Action.EXEC]
    assert [e.process.args for e in execs] == [("tool", "--new")]
    assert (counters.parse_errors, counters.incomplete) == (0, 0)
    assert counters.skipped["exec_enoent"] == 1


def test_a_late_fork_gives_its_process_and_the_children_it_had_meanwhile_their_program() -> None:
    """bash (seeded) forks P, P forks C; C's records and P's own arrive before P's fork
    record (P's was read from another CPU's buffer later): P's program and parent are
    filled in once it comes, and C, which inherited nothing from P, gets them too."""
    context = _context()
    tick = context.clock.ns_per_tick
    bash, worker, child = 100, 200, 300
    starts = {bash: 5 * tick, worker: 9 * tick, child: 12 * tick}
    decoder = EbpfDecoder(context)
    decoder.seed(
        [
            ProcessInfo(
                pid=bash,
                ppid=1,
                start=context.clock.start_from_ticks(5),
                start_ticks=5,
                comm="bash",
                executable="/usr/bin/bash",
                args=("bash", "-c", "job"),
                cwd="/srv",
            )
        ]
    )

    def fork(ns: int, pid: int, parent: int) -> bytes:
        return _record("F", ns, pid, pid, starts[pid], parent, starts[parent], 0, 0, 0, 0, "bash")

    def opened(ns: int, pid: int, path: str) -> bytes:
        return _record("O", ns, pid, pid, starts[pid], 3, 4294967196, 0, 0, path)

    lines = [
        fork(120, child, worker),
        opened(130, child, "/etc/hosts"),
        opened(140, worker, "/etc/passwd"),
        fork(100, worker, bash),  # the fork of the worker, read last
        opened(150, worker, "/etc/group"),
        _record("Q", 160, child, child, starts[child], 0, ""),
    ]
    events = [event for number, line in enumerate(lines, 1) for event in decoder.feed(line, number)]
    assert decoder.counters.parse_errors == 0, decoder.counters.errors
    by_kind = {(e.event.action, e.process.pid, e.file.path if e.file else ""): e for e in events}
    early = by_kind[(Action.OPEN, worker, "/etc/passwd")]
    assert early.process.executable == ""  # what was known when it went out
    worker_fork = by_kind[(Action.FORK, worker, "")]
    assert worker_fork.process.executable == "/usr/bin/bash"
    assert worker_fork.process.parent is not None and worker_fork.process.parent.pid == bash
    assert worker_fork.process.entity_id == early.process.entity_id  # the same process
    later = by_kind[(Action.OPEN, worker, "/etc/group")]
    assert (later.process.executable, later.process.args) == (
        "/usr/bin/bash",
        ("bash", "-c", "job"),
    )
    child_exit = by_kind[(Action.EXIT, child, "")]
    assert child_exit.process.executable == "/usr/bin/bash"
    assert child_exit.process.working_directory == "/srv"
    assert decoder.counters.late_forks == 2


def test_exec_whose_argv_never_comes_is_released_at_the_deadline() -> None:
    lines = [line for line in _lines("scenario.ndjson") if b'"data": "V\\t' not in line]
    events, counters = _decode(lines)
    execs = [e for e in events if e.event.action == Action.EXEC]
    assert len(execs) == 12
    assert all(e.process.args == () for e in execs)
    assert counters.incomplete >= 12


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_garbage_only_ever_becomes_parse_errors(lines: list[bytes]) -> None:
    decoder = EbpfDecoder(_context())
    for number, line in enumerate(lines, start=1):
        decoder.feed(line, number)
    decoder.finish()
    assert decoder.counters.parse_errors <= len(lines)
    assert all(error.startswith("scenario.ndjson:") for error in decoder.counters.errors)


_KIND = st.sampled_from(list("bheVZEXFJQLIOURKMCHNABGSTPYDWs?"))
_FIELD = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64).map(str),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_KIND, st.lists(_FIELD, max_size=14)), max_size=30))
def test_wellformed_looking_records_with_wrong_fields_never_crash(
    records: list[tuple[str, list[str]]],
) -> None:
    decoder = EbpfDecoder(_context())
    for number, (kind, fields) in enumerate(records, start=1):
        data = json.dumps("\t".join([kind, *fields]) + "\n")
        decoder.feed(b'{"type": "printf", "data": ' + data.encode() + b"}", number)
    decoder.finish()
    counters = decoder.counters
    assert counters.lines == len(records)
    assert counters.events == sum(counters.by_action.values())


def _printf(text: str) -> bytes:
    return ('{"type": "printf", "data": "' + text.replace("\t", "\\t") + '\\n"}').encode()


def test_an_own_mark_before_a_fork_and_an_exec_marks_both_events() -> None:
    start = 5_000_000_000
    parent = f"10\t{start - 1_000_000_000}"
    lines = [
        _printf(f"L\t100\t11\t11\t{start}\t"),
        _printf(f"F\t100\t11\t11\t{start}\t{parent}\t0\t0\t0\t0\tbash"),
        _printf("s\t11\t300\tcat"),
        _printf("s\t11\t300\t/etc/hostname"),
        _printf(f"V\t300\t11\t11\t{start}\t2\t0\t"),
        _printf(f"L\t400\t11\t11\t{start}\t"),
        _printf(f"E\t400\t11\t11\t{start}\t11\t{parent}\t0\t0\t0\t0\t/usr/bin/cat"),
        _printf("s\t11\t401\ttmp"),
        _printf(f"Z\t401\t11\t11\t{start}\t1\t"),
        _printf(f"O\t500\t11\t11\t{start}\t3\t-100\t0\t0\t/etc/hostname"),
        _printf(f"F\t600\t12\t12\t{start + 10_000_000}\t{parent}\t0\t0\t0\t0\tbash"),
    ]
    events, counters = _decode(lines)
    assert counters.parse_errors == 0, counters.errors
    marks = [(e.event.action, e.process.pid, e.process.provarmor) for e in events]
    assert marks == [
        (Action.FORK, 11, True),
        (Action.EXEC, 11, True),
        (Action.OPEN, 11, True),
        (Action.FORK, 12, False),
    ]


def test_an_own_mark_is_kept_when_another_processs_mark_comes_between_it_and_its_exec() -> None:
    """Records of other CPUs interleave: process 21's mark (its own exec, on another CPU)
    between process 11's mark and exec must not take 11's mark away."""
    start = 5_000_000_000
    parent = f"10\t{start - 1_000_000_000}"
    lines = [
        _printf(f"F\t100\t11\t11\t{start}\t{parent}\t0\t0\t0\t0\tpython3"),
        _printf(f"F\t110\t21\t21\t{start}\t{parent}\t0\t0\t0\t0\tpython3"),
        _printf(f"L\t400\t11\t11\t{start}\t"),
        _printf(f"L\t401\t21\t21\t{start}\t"),
        _printf(f"E\t400\t11\t11\t{start}\t11\t{parent}\t0\t0\t0\t0\t/usr/sbin/useradd"),
        _printf("s\t11\t402\ttmp"),
        _printf(f"Z\t402\t11\t11\t{start}\t1\t"),
        _printf(f"E\t401\t21\t21\t{start}\t21\t{parent}\t0\t0\t0\t0\t/usr/bin/ip"),
        _printf("s\t21\t403\ttmp"),
        _printf(f"Z\t403\t21\t21\t{start}\t1\t"),
    ]
    events, counters = _decode(lines)
    assert counters.parse_errors == 0, counters.errors
    execs = [(e.process.pid, e.process.provarmor) for e in events if e.event.action is Action.EXEC]
    assert execs == [(11, True), (21, True)]


def test_an_exec_without_its_own_mark_clears_it() -> None:
    """The kernel's cgroup at the exec decides: a jail moved the child out after its fork."""
    start = 5_000_000_000
    parent = f"10\t{start - 1_000_000_000}"
    lines = [
        _printf(f"L\t100\t11\t11\t{start}\t"),
        _printf(f"F\t100\t11\t11\t{start}\t{parent}\t0\t0\t0\t0\tpython3"),
        _printf("s\t11\t300\tsh"),
        _printf(f"V\t300\t11\t11\t{start}\t1\t0\t"),
        _printf(f"E\t400\t11\t11\t{start}\t11\t{parent}\t0\t0\t0\t0\t/bin/sh"),
        _printf("s\t11\t401\ttmp"),
        _printf(f"Z\t401\t11\t11\t{start}\t1\t"),
    ]
    events, counters = _decode(lines)
    assert counters.parse_errors == 0, counters.errors
    assert [(e.event.action, e.process.provarmor) for e in events] == [
        (Action.FORK, True),
        (Action.EXEC, False),
    ]


def test_a_terminal_at_exec_is_carried_by_the_process_and_inherited_at_fork() -> None:
    """``I`` names the controlling terminal of the exec that follows; the child keeps it
    until an exec of its own without one (``setsid``: a new session without a terminal)."""
    start = 5_000_000_000
    parent = f"10\t{start - 1_000_000_000}"
    child = start + 10_000_000
    shell = f"11\t{start}"
    lines = [
        _printf(f"F\t100\t11\t11\t{start}\t{parent}\t0\t0\t0\t0\tsshd"),
        _printf("s\t11\t300\t-bash"),
        _printf(f"V\t300\t11\t11\t{start}\t1\t0\t"),
        _printf(f"I\t399\t11\t11\t{start}\tpts3"),
        _printf(f"E\t400\t11\t11\t{start}\t11\t{parent}\t0\t0\t0\t0\t/bin/bash"),
        _printf("s\t11\t401\troot"),
        _printf(f"Z\t401\t11\t11\t{start}\t1\t"),
        _printf(f"O\t500\t11\t11\t{start}\t3\t-100\t0\t0\t/etc/shadow"),
        _printf(f"F\t600\t12\t12\t{child}\t{shell}\t0\t0\t0\t0\tbash"),
        _printf("s\t12\t700\tsetsid"),
        _printf(f"V\t700\t12\t12\t{child}\t1\t0\t"),
        _printf(f"E\t800\t12\t12\t{child}\t12\t{shell}\t0\t0\t0\t0\t/usr/bin/setsid"),
        _printf("s\t12\t801\troot"),
        _printf(f"Z\t801\t12\t12\t{child}\t1\t"),
    ]
    events, counters = _decode(lines)
    assert counters.parse_errors == 0, counters.errors
    terminals = [(e.event.action, e.process.pid, e.process.tty) for e in events]
    assert terminals == [
        (Action.FORK, 11, ""),
        (Action.EXEC, 11, "pts3"),
        (Action.OPEN, 11, "pts3"),
        (Action.FORK, 12, "pts3"),
        (Action.EXEC, 12, ""),
    ]


def test_a_terminal_record_is_only_for_the_exec_just_after_it() -> None:
    """An ``I`` whose exec record was lost names no later exec of that thread."""
    start = 5_000_000_000
    parent = f"10\t{start - 1_000_000_000}"
    late = 400 + TTY_BEFORE_EXEC_NS + 1
    lines = [
        _printf(f"I\t400\t11\t11\t{start}\tpts3"),
        _printf(f"s\t11\t{late - 1}\tid"),
        _printf(f"V\t{late - 1}\t11\t11\t{start}\t1\t0\t"),
        _printf(f"E\t{late}\t11\t11\t{start}\t11\t{parent}\t0\t0\t0\t0\t/usr/bin/id"),
        _printf(f"s\t11\t{late + 1}\troot"),
        _printf(f"Z\t{late + 1}\t11\t11\t{start}\t1\t"),
    ]
    events, counters = _decode(lines)
    assert (counters.parse_errors, counters.incomplete) == (0, 0), counters.errors
    assert [(e.event.action, e.process.tty) for e in events] == [(Action.EXEC, "")]


def test_a_fork_read_before_its_parents_exec_waits_for_it() -> None:
    """sh enters execve (its argv is read), migrates to another CPU, execs and forks: the
    child's fork record comes from the first CPU's buffer before the parent's exec record
    (seen live on this VM). The fork waits, so the child inherits sh, not python."""
    lines = _lines("scenario.ndjson")
    fork_at = next(i for i, line in enumerate(lines) if b'"data": "F\\t' in line and i > 1)
    argv_at = next(i for i, line in enumerate(lines) if b'"data": "V\\t' in line)
    moved = range(argv_at + 1, fork_at)  # the parent's cwd, exec and first records
    assert any(b'"data": "E\\t' in lines[i] for i in moved)
    reordered = [*lines[: argv_at + 1], lines[fork_at], *(lines[i] for i in moved)]
    reordered += lines[fork_at + 1 :]
    decoded = Decoded(*_decode(reordered))
    child = parse_line(lines[fork_at])
    assert isinstance(child, Header)
    (fork,) = decoded.of(Action.FORK, child.pid)
    assert fork.process.args == ("sh", "-c", "cat /etc/hostname | wc -c")
    assert fork.process.executable == "/usr/bin/sh"
    original = Decoded(*_decode(lines))
    assert sorted(e.event.id for e in decoded.events) == sorted(e.event.id for e in original.events)
    assert decoded.counters.incomplete == 0


def test_a_child_read_before_its_parents_whole_life_inherits_the_program_its_parent_execd() -> None:
    """A lab recording (tests/data/ebpf/cron_disorder.ndjson): the lab starts a per-job cron
    (pid 21075: fork, execs nsenter, then cron) whose job child 21077 ran on the other CPU;
    bpftrace read the child's records 10 ms of record time before ANY record of its parent.
    In the order read, the child's fork names a parent nobody knows yet, without a program
    (the PAM read of /etc/shadow that follows had no scheduler parent: a false incident).
    Decoded in record-time order, the fork carries cron's program, like its 49 siblings."""
    lines = _lines("cron_disorder.ndjson")
    in_read_order = Decoded(*_decode(lines))
    (fork,) = in_read_order.of(Action.FORK, 21077)
    assert fork.process.executable == ""  # the defect, as the sensor saw it
    settings = EbpfSettings()
    decoded = Decoded(*_decode(lines, reorder_ns=settings.reorder_ms * 1_000_000))
    cron = decoded.exec_by_args("/usr/sbin/cron", "-f")
    (fork,) = decoded.of(Action.FORK, 21077)
    assert (fork.process.executable, fork.process.args) == (
        "/usr/sbin/cron",
        ("/usr/sbin/cron", "-f"),
    )
    assert fork.process.parent is not None
    assert fork.process.parent.entity_id == cron.process.entity_id
    assert decoded.counters.reordered > 0
    assert (decoded.counters.reorder_late, decoded.counters.late_forks) == (0, 0)
    assert sorted(e.event.action for e in decoded.events) == sorted(
        e.event.action for e in in_read_order.events
    )


def test_seeding_reports_what_was_running_ancestors_first_and_once() -> None:
    """init, an sshd listening, its child and the session's shell on pts0 were running;
    the child's fork record came before the scan, while neither program was known: both
    are filled in from /proc and reported too. The shell's later events carry its terminal;
    a second scan reports nothing (every process is known)."""
    context = _context()
    clock = context.clock
    tick = clock.ns_per_tick
    sshd_start, child_start, shell_start = 50 * tick, 60 * tick, 70 * tick
    decoder = EbpfDecoder(context)
    fork = _printf(f"F\t100\t11\t11\t{child_start}\t10\t{sshd_start}\t0\t0\t0\t0\tsshd")
    (forked,) = decoder.feed(fork, 1)
    assert forked.process.executable == ""

    def info(pid: int, ppid: int, start_ns: int, exe: str, tty: str = "") -> ProcessInfo:
        ticks = start_ns // tick
        return ProcessInfo(
            pid=pid,
            ppid=ppid,
            start=clock.start_from_ticks(ticks),
            start_ticks=ticks,
            comm=exe.rsplit("/", 1)[1],
            executable=exe,
            args=(exe,),
            uid=0,
            euid=0,
            egid=0,
            tty=tty,
        )

    running = [
        info(12, 11, shell_start, "/usr/bin/bash", "pts0"),
        info(11, 10, child_start, "/usr/sbin/sshd"),
        info(10, 1, sshd_start, "/usr/sbin/sshd"),
        info(1, 0, tick, "/sbin/init"),
    ]
    listening = ServerRole("tcp", listening=Endpoint(ip="127.0.0.1", port=2222))
    events = decoder.seed(running, {10: (listening,)})
    assert [(e.event.action, e.process.pid) for e in events] == [
        (Action.RUNNING, 1),
        (Action.RUNNING, 10),
        (Action.RUNNING, 11),
        (Action.RUNNING, 12),
    ]
    init, sshd, child, shell = events
    assert init.process.parent is None
    assert sshd.source == Endpoint(ip="127.0.0.1", port=2222) and shell.source is None
    assert child.process.entity_id == forked.process.entity_id
    assert child.process.executable == "/usr/sbin/sshd"
    assert shell.process.parent is not None
    assert shell.process.parent.entity_id == child.process.entity_id
    assert (shell.process.tty, shell.process.entity_id) == (
        "pts0",
        running[0].entity_id(context.host),
    )
    assert {e.timestamp for e in events} == {100 + context.monotonic_offset_ns}
    assert decoder.counters.by_action[Action.RUNNING] == 4
    opened = _printf(f"O\t200\t12\t12\t{shell_start}\t3\t-100\t0\t0\t/etc/shadow")
    (read,) = decoder.feed(opened, 2)
    assert (read.process.entity_id, read.process.tty) == (shell.process.entity_id, "pts0")
    assert decoder.seed(running, {10: (listening,)}) == []
    assert EbpfDecoder(context).seed(running) == []  # without the roles: the table only
    untraced = EbpfDecoder(context).seed(running, {}, unreported={11})  # the agent's pid
    assert [event.process.pid for event in untraced] == [1, 10, 12]
