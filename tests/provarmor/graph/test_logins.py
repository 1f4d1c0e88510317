"""Host log events joined to the kernel sensor's processes, on the real combined capture of
tests/data/hostlogs/login-implant.ndjson.gz (an sshd brute force, a login, an implant) and the
log-only journal capture beside it."""

from __future__ import annotations

from pathlib import Path

import msgspec

from provarmor.graph.builder import BuilderLimits, GraphBuilder
from provarmor.graph.logins import EXIT_GRACE_NS, LOGIN, JoinLimits, LogJoin
from provarmor.graph.records import NodeKind
from provarmor.graph.store import MemoryGraphStore
from provarmor.graph.trace import Direction, trace
from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.hostlog import read_journal
from provarmor.sources.ndjson import read_ndjson

DATA = Path(__file__).resolve().parents[2] / "data" / "hostlogs"
COMBINED = DATA / "login-implant.ndjson.gz"
VICTIM, CLIENT = "hljvictim", "10.99.16.1"


def _events(path: Path, reader=read_ndjson) -> list[Event]:
    report = IngestReport(source=str(path))
    events = list(reader(path, report=report, host=HostContext(id="vm1")))
    assert report.rejected == 0, report.errors
    return events


def _build(events: list[Event], builder: GraphBuilder) -> tuple[list[Event], MemoryGraphStore]:
    store = MemoryGraphStore()
    joined = [builder.add(event) for event in events]
    store.apply(builder.drain(full=True))
    return joined, store


def _is_log(event: Event) -> bool:
    return event.event.dataset == "journald"


def test_log_events_name_the_processes_the_sensor_saw() -> None:
    events = _events(COMBINED)
    builder = GraphBuilder()
    joined, store = _build(events, builder)
    logs = [event for event in joined if _is_log(event) and event.process.name == "sshd"]
    counters = builder.join.counters
    # every sshd line is joined; the one other line (the recording script's `logger`, whose
    # process the fixture leaves out) keeps its own id
    assert counters.log_events == len(logs) + 1
    assert counters.joined == len(logs) and counters.unmatched == 1
    failures = [
        e for e in logs if e.event.action is Action.AUTHENTICATE and e.event.outcome == "failure"
    ]
    assert failures
    for event in logs:
        node = store.node(event.process.entity_id)
        assert node is not None and node.executable == "/usr/sbin/sshd", event.message
    # the three guessing connections were three sshd processes, the login a fourth
    attempts = {e.process.entity_id for e in failures if e.authentication is not None}
    assert len(attempts) == 3


def test_a_login_is_a_node_with_an_edge_to_the_process_that_accepted_it() -> None:
    builder = GraphBuilder()
    joined, store = _build(_events(COMBINED), builder)
    accepted = next(
        e
        for e in joined
        if e.event.action is Action.AUTHENTICATE and e.event.outcome == "success" and _is_log(e)
    )
    assert builder.join.counters.logins == 1
    edges = [e for e in store.in_edges(accepted.process.entity_id) if e.action == LOGIN]
    assert len(edges) == 1
    login = store.node(edges[0].src)
    assert login is not None and login.kind is NodeKind.SOCKET
    assert (login.ip, login.user) == (CLIENT, VICTIM)
    assert login.port == accepted.source.port if accepted.source else False
    assert login.label == f"login of {VICTIM} from {CLIENT} (password) after 9 failed attempts"
    # the implant runs below the process that accepted the login
    implant = next(
        e.process.entity_id
        for e in joined
        if e.event.action is Action.EXEC and e.process.executable == "/tmp/.hl-implant"
    )
    current = store.node(implant)
    seen = []
    while current is not None and current.parent:
        seen.append(current.id)
        current = store.node(current.parent)
    assert accepted.process.entity_id in seen
    # and a backward trace from the implant reaches the login
    traced = trace(store, implant, direction=Direction.BACKWARD)
    assert login.id in traced.nodes


def test_log_only_input_keeps_its_own_process_ids() -> None:
    events = _events(DATA / "journal.json", read_journal)
    builder = GraphBuilder()
    joined, store = _build(events, builder)
    assert joined == events
    counters = builder.join.counters
    assert counters.log_events == counters.unmatched == len(events)
    assert counters.joined == counters.logins == 0
    assert not [n for n in store.find_nodes("login of", limit=5) if n.kind is NodeKind.SOCKET]


def test_a_process_exited_before_the_line_is_not_joined() -> None:
    events = _events(COMBINED)
    accepted = next(
        e
        for e in events
        if e.event.action is Action.AUTHENTICATE and e.event.outcome == "success" and _is_log(e)
    )
    sensor = [e for e in events if not _is_log(e)]
    pid = accepted.process.pid
    exit_ts = max(
        e.timestamp for e in sensor if e.process.pid == pid and e.event.action is Action.EXIT
    )
    join = LogJoin()
    for event in sensor:
        join.join(event)
    late = msgspec.structs.replace(accepted, timestamp=exit_ts + EXIT_GRACE_NS + 1)
    assert join.join(late) is late
    assert join.counters.unmatched == 1 and join.take_login() is None
    in_time = msgspec.structs.replace(accepted, timestamp=exit_ts + EXIT_GRACE_NS)
    assert join.join(in_time).process.entity_id != accepted.process.entity_id
    assert join.counters.joined == 1


def test_memory_is_bounded_and_what_is_forgotten_is_counted() -> None:
    limits = BuilderLimits(join=JoinLimits(max_processes=2, max_failure_keys=1))
    builder = GraphBuilder(limits=limits)
    joined, _store = _build(_events(COMBINED), builder)
    counters = builder.join.counters
    assert counters.processes_forgotten > 0
    assert counters.unmatched > 0  # lines of processes forgotten keep their own ids
    assert counters.joined + counters.unmatched == counters.log_events
    assert len(joined) == builder.counters.events
