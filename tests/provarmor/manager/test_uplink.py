"""UploadSink against a real manager (uvicorn on 127.0.0.1 over TLS): draining a real spool
through an outage without loss or duplicate."""

import gzip
import json
import os
import socket
import time
from pathlib import Path

import msgspec
import pytest

from provarmor.agent.spool import Spool, SpoolPosition
from provarmor.manager.actions import ActionAuditEntry, ActionRecord, ActionState, CommandKind
from provarmor.manager.auth import Role
from provarmor.manager.client import ManagerClient, RetryPolicy, UplinkError
from provarmor.manager.command_runner import CommandRunner
from provarmor.manager.routes.tokens import create_token
from provarmor.manager.store import EventQuery, Page
from provarmor.manager.uplink import UploadSink
from provarmor.model.event import Event
from provarmor.response.action import build_context
from provarmor.response.policy import Policy
from provarmor.response.records import ActionKind, ActionRequest, FileTarget
from provarmor.response.responder import Responder
from provarmor.response.settings import ResponseSettings

LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
LAB_HOST = "3d1219c7c4c5404aaa1f6d2a48adfda4"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _events(count: int | None = None) -> list[Event]:
    lines = gzip.decompress(LAB.read_bytes()).splitlines()
    decoder = msgspec.json.Decoder(Event)
    return [decoder.decode(line) for line in lines[:count]]


def _enrolled(https_server, host_id=LAB_HOST) -> ManagerClient:
    client = ManagerClient(https_server["url"], ca_file=https_server["ca"])
    token = create_token(https_server["store"], role=Role.ENROLL, valid_ns=60 * 10**9).token
    client.enroll(token, host_id=host_id, hostname="vm")
    return client


def test_upload_sink_resumes_after_an_outage_without_loss_or_duplicate(https_server, tmp_path):
    host = "uplink-host"
    events = [
        msgspec.structs.replace(e, host=msgspec.structs.replace(e.host, id=host))
        for e in _events(1200)
    ]
    client = _enrolled(https_server, host_id=host)
    credential = client.credential
    spool = Spool(
        tmp_path / "spool", max_bytes=64 * 1024 * 1024, fsync=False, consumers=["manager"]
    )
    spool.append(events)

    def make_position(sequence: int) -> SpoolPosition:
        return SpoolPosition(sequence=sequence)

    sink = UploadSink(client, state_file=tmp_path / "uplink.json", make_position=make_position)
    batch = spool.read("manager", 400)
    sink.write(batch.events, batch.position)
    spool.ack("manager", batch.position)
    # outage: the manager is unreachable (nothing listens on the port)
    dead = ManagerClient(
        f"https://127.0.0.1:{_free_port()}",
        credential,
        https_server["ca"],
        retry=RetryPolicy(retries=1, backoff_s=0.01),
    )
    down = UploadSink(dead, state_file=tmp_path / "uplink.json", make_position=make_position)
    assert down.committed() == SpoolPosition(sequence=400)  # from the last ack seen
    pending = spool.read("manager", 400)
    with pytest.raises(UplinkError):
        down.write(pending.events, pending.position)
    down.close()
    # the manager stored the second batch but the answer was lost: the agent restarts
    client.upload(pending.position.sequence, pending.events)
    client.close()
    spool.close()
    spool = Spool(
        tmp_path / "spool", max_bytes=64 * 1024 * 1024, fsync=False, consumers=["manager"]
    )
    restarted = ManagerClient(https_server["url"], credential, https_server["ca"])
    sink = UploadSink(restarted, state_file=tmp_path / "uplink.json", make_position=make_position)
    committed = sink.committed()
    assert committed == SpoolPosition(sequence=800)  # the manager's word
    spool.ack("manager", committed)
    while (batch := spool.read("manager", 400)).events:
        sink.write(batch.events, batch.position)
        spool.ack("manager", batch.position)
    spool.close()
    sink.close()
    agent_id = credential.split(".")[1]
    assert https_server["store"].agent(agent_id).acked_sequence == 1200
    rows = https_server["store"].search_events(EventQuery(host=host, page=Page(limit=1000)))
    rows += https_server["store"].search_events(
        EventQuery(host=host, page=Page(limit=1000, offset=1000))
    )
    assert sorted(row.event_id for row in rows) == sorted(e.event.id for e in events)


def test_a_status_report_also_runs_the_hosts_response_commands(https_server, tmp_path):
    """With a command runner, each status report fetches the host's commands, runs them on
    this host (a real file is quarantined) and reports the results and the runner's
    counters."""
    if os.geteuid() != 0:
        pytest.skip("quarantine needs root (the owner-only store keeps the file's owner)")
    store = https_server["store"]
    context = build_context(ResponseSettings(state_dir=tmp_path / "response"))
    client = _enrolled(https_server, host_id=context.host.id)
    path = tmp_path / "implant"
    path.write_bytes(b"payload")
    request = ActionRequest(
        id="act-uplink",
        kind=ActionKind.QUARANTINE,
        target=FileTarget(path=str(path)),
        requested_by="analyst:t",
        host_id=context.host.id,
    )
    now = time.time_ns()
    record = ActionRecord(
        id=request.id,
        host=context.host.id,
        incident_id="",
        kind=request.kind,
        request_json=msgspec.json.encode(request).decode(),
        state=ActionState.QUEUED,
        needs_approval=False,
        proposed_by="analyst:t",
        created_ns=now,
        updated_ns=now,
        command=CommandKind.RUN,
        expires_ns=now + 60 * 10**9,
    )
    queued = ActionAuditEntry(
        action_id=record.id, ts_ns=now, author="t", step="executed", state=ActionState.QUEUED
    )
    assert store.add_action(record, audit=queued)
    runner = CommandRunner(client=client, responder=Responder.open(Policy(), context))
    sink = UploadSink(
        client,
        state_file=tmp_path / "uplink.json",
        make_position=lambda sequence: SpoolPosition(sequence=sequence),
        commands=runner,
    )
    sink.report_status({"sensor": "ebpf", "counters": {"events": 5}})
    assert not path.exists()
    assert store.action("act-uplink").state is ActionState.DONE
    sink.report_status({"sensor": "ebpf", "counters": {"events": 6}})
    reported = json.loads(store.agent(client.agent_id).status_json)["counters"]
    assert reported == {"events": 6, "response.commands.run": 1}
    sink.close()
