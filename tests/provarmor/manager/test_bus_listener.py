"""Cluster mode end to end on this host (root): a real nats-server, a real manager over
HTTPS that sends commands on the bus (signed), and the agent's bus listener with a real
responder. A kill goes out on the agent's subject and its result comes back over HTTPS; a
command waits in the stream while the agent is offline, and one that expires meanwhile is
gone from the stream and never runs; a message not signed by the manager (another key, a
changed body, another agent's) is refused and counted, not run; a command delivered again
after the agent died before acknowledging it runs once; isolate and its release go over
the bus into a network namespace of the test's own (``flock /tmp/provarmor-live.lock``).
On a secured bus (operator mode, as ``provarmor cluster up`` runs it) the manager sends as
its own bus user and the agent pulls with the credentials it learned at enrolment."""

import asyncio
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import nats
import pytest

from provarmor.bus.command_channel import CommandInbox
from provarmor.bus.commands import STREAM, CommandMessage, ensure_command_stream, subject_for
from provarmor.bus.credentials import Credentials, Trust
from provarmor.bus.publisher import BusPublisher, BusSink
from provarmor.bus.signing import SigningKey
from provarmor.manager.actions import Command, CommandKind
from provarmor.manager.auth import Role
from provarmor.manager.bus_listener import BusCommandListener, BusUplinkSink
from provarmor.manager.client import ManagerClient
from provarmor.manager.command_runner import CommandRunner
from provarmor.manager.routes.tokens import create_token
from provarmor.response.action import build_context
from provarmor.response.audit import Phase, read_audit
from provarmor.response.policy import Policy
from provarmor.response.records import ActionKind, ActionRequest, FileTarget
from provarmor.response.responder import Responder
from provarmor.response.settings import ResponseSettings
from provarmor.sources.procfs import read_process
from provarmor.testing.nats import NatsServer, started, started_secured

from .conftest import serving_https

pytestmark = pytest.mark.privileged
NAMESPACE = f"pa-buscmd-{os.getpid()}"
INSIDE = ("ip", "netns", "exec", NAMESPACE, "nft")


def wait_for(condition: Callable[[], bool], *, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@dataclass
class Cluster:
    bus: NatsServer
    served: dict
    runner: CommandRunner
    api: httpx.Client
    analyst: str
    admin: str
    watcher: Credentials | None = None
    """Who counts the waiting commands on a secured bus (the manager's user)."""
    listeners: list[BusCommandListener] = field(default_factory=list)

    @property
    def agent_id(self) -> str:
        return self.runner.client.agent_id

    @property
    def host(self) -> str:
        return self.runner.responder.context.host.id

    def listen(self, *, ack_wait_s: float = 120.0) -> BusCommandListener:
        """Start the agent's listener (the agent comes online)."""
        learned = self.runner.client.bus
        credentials = learned.credentials if learned is not None else None
        listener = BusCommandListener(
            CommandInbox(
                self.bus.url, self.agent_id, ack_wait_s=ack_wait_s, credentials=credentials
            ),
            self.runner,
            key_file=self.runner.responder.context.settings.state_dir / "manager-key.txt",
            retry_s=0.5,
        )
        listener.start()
        self.listeners.append(listener)
        return listener

    def call(self, path: str, token: str, body: dict | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return self.api.post(f"/api/v1{path}", json=body or {}, headers=headers)

    def act(self, kind: str, target: dict, **step: object) -> str:
        answer = self.call(
            "/actions", self.analyst, {"kind": kind, "target": target, "host_id": self.host}
        )
        assert answer.status_code == 201, answer.text
        action = answer.json()["id"]
        if kind == "isolate":
            assert self.call(f"/actions/{action}/approve", self.admin).status_code == 200
        answer = self.call(f"/actions/{action}/execute", self.analyst, dict(step))
        assert answer.status_code == 200, answer.text
        return action

    def action(self, action_id: str) -> dict:
        headers = {"Authorization": f"Bearer {self.analyst}"}
        return self.api.get(f"/api/v1/actions/{action_id}", headers=headers).json()

    def wait_state(self, action_id: str, state: str) -> dict:
        found: dict = {}

        def reached() -> bool:
            found.update(self.action(action_id))
            return found["state"] == state

        wait_for(reached, what=f"{action_id} to be {state}")
        return found


@pytest.fixture
def nft_command() -> tuple[str, ...]:
    return ("nft",)


@pytest.fixture
def cluster(tmp_path: Path, kit, nft_command) -> Iterator[Cluster]:
    yield from _cluster(tmp_path, kit, nft_command, trust=None)


@pytest.fixture
def secured_cluster(tmp_path: Path, kit, nft_command) -> Iterator[Cluster]:
    """The manager and the agent on a bus in operator mode, with the users ``cluster up``
    makes: the manager's own (``bus_credentials``) and the agent's, learned at enrolment."""
    yield from _cluster(tmp_path, kit, nft_command, trust=Trust.generate())


def _cluster(tmp_path: Path, kit, nft_command, *, trust: Trust | None) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip("response actions need root (signals to any process, chown, nftables)")
    bus = started(tmp_path / "nats") if trust is None else started_secured(tmp_path / "nats", trust)
    secured: dict[str, Path] = {}
    if trust is not None:
        (tmp_path / "keys").mkdir()
        secured["bus_signing_key"] = tmp_path / "keys" / "signing.json"
        secured["bus_signing_key"].write_text(trust.signer().to_json())
        secured["bus_credentials"] = tmp_path / "keys" / "manager.creds"
        secured["bus_credentials"].write_text(trust.manager().to_creds())
    try:
        with serving_https(tmp_path / "manager", kit, bus_url=bus.url, **secured) as served:
            settings = ResponseSettings(state_dir=tmp_path / "response", nft_command=nft_command)
            context = build_context(settings)
            client = ManagerClient(served["url"], ca_file=served["ca"])
            client.enroll(
                create_token(served["store"], role=Role.ENROLL).token, host_id=context.host.id
            )
            runner = CommandRunner(client=client, responder=Responder.open(Policy(), context))
            verify = ssl.create_default_context(cafile=str(served["ca"]))
            api = httpx.Client(base_url=served["url"], verify=verify)
            found = Cluster(
                bus=bus,
                served=served,
                runner=runner,
                api=api,
                analyst=create_token(served["store"], role=Role.ANALYST).token,
                admin=create_token(served["store"], role=Role.ADMIN).token,
                watcher=trust.manager() if trust is not None else None,
            )
            yield found
            for listener in found.listeners:
                listener.stop()
            api.close()
            client.close()
    finally:
        bus.stop()


def waiting(cluster: Cluster) -> int:
    """Messages in the command stream (waiting for an agent)."""

    async def count() -> int:
        login = cluster.watcher.connect_options() if cluster.watcher is not None else {}
        client = await nats.connect(cluster.bus.url, **login)
        try:
            info = await client.jetstream().stream_info(STREAM)
            return int(info.state.messages)
        finally:
            await client.close()

    return asyncio.run(count())


@pytest.mark.parametrize("bus", ["open", "secured"])
def test_a_kill_goes_over_the_bus_and_its_result_comes_back(bus, request):
    cluster: Cluster = request.getfixturevalue("cluster" if bus == "open" else "secured_cluster")
    if bus == "secured":
        learned = cluster.runner.client.bus
        assert learned is not None  # the agent's own user, learned at enrolment
        assert learned.credentials.inbox == f"_INBOX.{cluster.agent_id}"
    cluster.listen()
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        context = cluster.runner.responder.context
        info = read_process(victim.pid, clock=context.clock)
        assert info is not None
        target = {"type": "process", "entity_id": info.entity_id(context.host), "pid": victim.pid}
        action = cluster.act("kill", target)
        view = cluster.wait_state(action, "done")
        assert victim.wait(timeout=5) == -9
        assert str(victim.pid) in view["result"]["affected"]
        steps = [(s["step"], s["author"].split(":")[0]) for s in view["audit"]]
        assert steps == [
            ("proposed", "analyst"),
            ("executed", "analyst"),
            ("sent on the bus", "manager"),
            ("run delivered", "agent"),
            ("result", "agent"),
        ]
        assert view["audit"][2]["message"] == f"to agent {cluster.agent_id}"
        wait_for(lambda: waiting(cluster) == 0, what="the acknowledged command to leave")
    finally:
        victim.kill()
        victim.wait()


def test_a_command_waits_for_an_offline_agent_and_an_expired_one_never_runs(cluster, tmp_path):
    expiring = tmp_path / "expiring"
    expiring.write_bytes(b"stays")
    waiting_file = tmp_path / "waiting"
    waiting_file.write_bytes(b"goes")
    short = cluster.act("quarantine", {"type": "file", "path": str(expiring)}, expires_seconds=1)
    kept = cluster.act("quarantine", {"type": "file", "path": str(waiting_file)})
    assert waiting(cluster) == 2
    wait_for(lambda: waiting(cluster) == 1, what="the short command's time to live")
    assert cluster.wait_state(short, "expired")["audit"][-1]["step"] == "run expired"
    assert cluster.action(kept)["state"] == "queued"
    cluster.listen()  # the agent comes back
    cluster.wait_state(kept, "done")
    assert not waiting_file.exists()
    assert expiring.read_bytes() == b"stays"
    assert cluster.runner.counters.get("commands.expired", 0) == 0  # never even delivered


def forged_by(cluster: Cluster, key: SigningKey, path: Path, *, agent_id: str = "") -> None:
    """Publish a quarantine command for ``path`` on this agent's subject, signed by
    ``key`` (for ``agent_id``)."""
    request = ActionRequest(
        id="act-forged",
        kind=ActionKind.QUARANTINE,
        target=FileTarget(path=str(path)),
        requested_by="intruder",
    )
    command = Command(
        id="act-forged",
        command=CommandKind.RUN,
        request=request,
        expires_ns=time.time_ns() + 60 * 10**9,
    )
    message = CommandMessage(
        agent_id=agent_id or cluster.agent_id,
        command_id=command.id,
        body=msgspec.json.encode(command),
    )
    _, headers, payload = message.encode(key, ttl_s=60, queued=time.time_ns())
    asyncio.run(publish_raw(cluster.bus.url, subject_for(cluster.agent_id), headers, payload))


async def publish_raw(url: str, subject: str, headers: dict, payload: bytes) -> None:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        await ensure_command_stream(js)
        await js.publish(subject, payload, headers=headers)
    finally:
        await client.close()


def test_commands_the_manager_did_not_sign_are_refused_and_counted(cluster, tmp_path):
    cluster.listen()
    target = tmp_path / "precious"
    target.write_bytes(b"keep")
    # a key of its own
    forged_by(cluster, SigningKey.load_or_create(tmp_path / "intruder.key"), target)
    wait_for(lambda: cluster.runner.counters.get("commands.forged", 0) == 1, what="a refusal")
    # the manager's own key, but signed for another agent
    manager_key = cluster.served["context"].bus_commands.publisher.key
    forged_by(cluster, manager_key, target, agent_id="0123456789abcdef")
    wait_for(lambda: cluster.runner.counters.get("commands.forged", 0) == 2, what="a refusal")
    assert target.read_bytes() == b"keep"
    assert not cluster.runner.responder.audit.path.exists()  # nothing was even proposed
    # the refusals reach the manager with the agent's status
    status_client = ManagerClient(
        cluster.served["url"], cluster.runner.client.credential, ca_file=cluster.served["ca"]
    )
    sink = BusUplinkSink(
        BusSink(
            BusPublisher(cluster.bus.url),
            agent_id=cluster.agent_id,
            host_id=cluster.host,
            state_file=tmp_path / "bus.json",
            make_position=lambda sequence: sequence,
        ),
        status_client=status_client,
        listener=cluster.listeners[0],
    )
    sink.report_status({"sensor": "ebpf", "healthy": True, "counters": {"ebpf.lost": 0}})
    sink.sink.close()
    status_client.close()
    headers = {"Authorization": f"Bearer {cluster.analyst}"}
    (host,) = cluster.api.get("/api/v1/hosts", headers=headers).json()
    (agent,) = host["agents"]
    assert agent["status"]["counters"]["response.commands.forged"] == 2
    assert agent["status"]["counters"]["ebpf.lost"] == 0
    assert agent["status"]["counters"]["bus.published"] == 0
    wait_for(lambda: waiting(cluster) == 0, what="the refused messages to be terminated")
    # a real command still runs afterwards
    action = cluster.act("quarantine", {"type": "file", "path": str(target)})
    cluster.wait_state(action, "done")


def test_a_command_delivered_again_after_the_agent_died_runs_once(cluster, tmp_path):
    path = tmp_path / "twice"
    path.write_bytes(b"payload")
    action = cluster.act("quarantine", {"type": "file", "path": str(path)})
    dying = BusCommandListener(
        CommandInbox(cluster.bus.url, cluster.agent_id, ack_wait_s=1.0),
        cluster.runner,
        key_file=tmp_path / "key.txt",
    )
    key = dying.trusted_key()
    assert key is not None

    async def run_and_die() -> None:
        (message,) = await dying.inbox.fetch(wait_s=5.0)
        command = dying.read(message, key)
        cluster.runner.run(command)  # ran; died before reporting and acknowledging
        await dying.inbox.close()

    asyncio.run(run_and_die())
    assert not path.exists()
    assert cluster.action(action)["state"] == "queued"
    cluster.listen(ack_wait_s=1.0)  # the agent restarts: JetStream delivers it again
    view = cluster.wait_state(action, "done")
    assert view["result"]["outcome"] == "done"
    assert cluster.runner.counters["commands.repeated"] == 1
    records, _ = read_audit(cluster.runner.responder.audit.path)
    executing = [r for r in records if r.phase is Phase.EXECUTING and r.request.id == action]
    assert len(executing) == 1


@pytest.fixture
def namespace() -> Iterator[str]:
    if shutil.which("nft") is None or shutil.which("ip") is None:
        pytest.skip("nftables or iproute2 is not installed (scripts/bootstrap.sh installs them)")
    subprocess.run(["ip", "netns", "add", NAMESPACE], check=True)
    yield NAMESPACE
    subprocess.run(["ip", "netns", "delete", NAMESPACE], check=True)


def provarmor_table() -> str:
    found = subprocess.run(
        [*INSIDE, "list", "table", "inet", "provarmor"], capture_output=True, text=True, check=False
    )
    return found.stdout


@pytest.mark.parametrize("nft_command", [INSIDE])
def test_isolation_and_its_release_go_over_the_bus(namespace, cluster):
    cluster.listen()
    action = cluster.act("isolate", {"type": "host"})
    cluster.wait_state(action, "done")
    assert "chain isolate_input" in provarmor_table()
    assert cluster.call(f"/actions/{action}/undo", cluster.analyst).status_code == 200
    view = cluster.wait_state(action, "undone")
    assert "isolate_input" not in provarmor_table()
    assert [s["step"] for s in view["audit"]][-4:] == [
        "undo (release)",
        "sent on the bus",
        "undo delivered",
        "undo result",
    ]
