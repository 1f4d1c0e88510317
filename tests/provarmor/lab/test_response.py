"""The lab's response policy and where it acts: the shipped containment policy, the mode of
``--response``, the lab's jails, and the firewall of the victim's own network namespace
(real namespaces, real nftables, real processes): a block or an isolation there cuts the
victim off the attacker and leaves this machine's ruleset alone."""

import os
import subprocess
import sys
import time

import pytest

from provarmor.lab.context import LabContext
from provarmor.lab.jail import ProcessJail
from provarmor.lab.response import LAB_PROCESS_SCOPE, lab_policy, lab_response_settings
from provarmor.model.errors import ConfigError, ParseError
from provarmor.response.action import build_context
from provarmor.response.block import BLOCK, UNBLOCK
from provarmor.response.isolate import ISOLATE, RELEASE
from provarmor.response.policy import Mode, bundled_policy
from provarmor.response.records import (
    ActionKind,
    ActionRequest,
    HostTarget,
    NetworkTarget,
    Outcome,
    Target,
)
from provarmor.response.settings import ResponseSettings
from provarmor.sources.procfs import read_clock, read_process


def test_without_a_file_the_shipped_containment_policy_runs_in_the_mode_asked_for():
    policy = lab_policy(None, Mode.ENFORCE)
    assert policy.mode is Mode.ENFORCE
    assert policy.source == str(bundled_policy())
    high, downloaded = policy.rules
    assert (high.severity, high.lineage) == ("high", ())
    assert (downloaded.severity, downloaded.lineage) == ("medium", ("downloaded",))
    assert high.actions == (
        ActionKind.KILL,
        ActionKind.QUARANTINE,
        ActionKind.REVERT_FILE,
        ActionKind.BLOCK,
    )
    assert downloaded.actions == (ActionKind.KILL, ActionKind.QUARANTINE, ActionKind.REVERT_FILE)


def test_the_files_mode_holds_when_no_mode_is_asked_for(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("mode: dry-run\nrules:\n  - name: r\n    actions: [suspend]\n")
    assert lab_policy(path, None).mode is Mode.DRY_RUN
    assert lab_policy(path, Mode.ENFORCE).mode is Mode.ENFORCE


def test_block_and_isolate_are_taken_in_the_lab(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "mode: enforce\nrules:\n  - name: cut c2\n    actions: [kill, block, isolate]\n"
    )
    (rule,) = lab_policy(path, None).rules
    assert rule.actions == (ActionKind.KILL, ActionKind.BLOCK, ActionKind.ISOLATE)


def test_a_bad_policy_names_file_and_line(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("mode: enforce\nrules:\n  - name: r\n    actions: [explode]\n")
    with pytest.raises(ParseError) as caught:
        lab_policy(path, None)
    assert caught.value.location == f"{path}:4"
    with pytest.raises(ConfigError, match="cannot read the response policy"):
        lab_policy(tmp_path / "missing.yaml", Mode.ENFORCE)


def test_what_a_lab_jail_starts_is_in_the_scope_and_the_lab_itself_is_not():
    if os.geteuid() != 0:
        pytest.skip("jails need root to create cgroups")
    jail = ProcessJail("pytest-scope")
    if not jail.uses_cgroup:
        pytest.skip("no cgroup v2 hierarchy (the jail falls back to sessions)")
    clock = read_clock()
    try:
        child = jail.spawn(["sleep", "30"])
        jailed = read_process(child.pid, clock=clock)
        assert jailed is not None and jailed.cgroup.startswith(LAB_PROCESS_SCOPE)
    finally:
        jail.kill_all()
    me = read_process(os.getpid(), clock=clock)
    assert me is not None and not me.cgroup.startswith(LAB_PROCESS_SCOPE)


SEED = 31
PORT = 4444
PROBE = (
    "import socket,sys\n"
    "s=socket.socket(); s.settimeout(1)\n"
    "sys.exit(s.connect_ex((sys.argv[1], int(sys.argv[2]))))\n"
)


def _reaches(jail: ProcessJail, address: str, port: int) -> bool:
    probe = jail.spawn([sys.executable, "-c", PROBE, address, str(port)])
    return probe.wait(timeout=10) == 0


def _eventually(check, what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within 10 s")
        time.sleep(0.1)


def _act(action, target: Target, context) -> None:
    request = ActionRequest(id="lab", kind=action.kind, target=target, requested_by="test")
    result = action.run(request, context)
    assert result.outcome is Outcome.DONE, result.message


def _table(*prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, "nft", "list", "table", "inet", "provarmor"], capture_output=True, text=True
    )


@pytest.mark.privileged
def test_block_and_isolate_act_in_the_victims_namespace_only(lab_machine, tmp_path):
    ctx = LabContext.from_seed(SEED)
    network = ctx.network
    settings = lab_response_settings(ResponseSettings(state_dir=tmp_path / "r"), seed=SEED)
    assert settings.network_namespace == network.victim.namespace
    assert settings.process_scope == LAB_PROCESS_SCOPE
    context = build_context(settings)
    host_had_table = _table().returncode == 0
    c2 = network.address("c2")
    listener = f"import socket,time\ns=socket.create_server(({c2!r},{PORT}))\ntime.sleep(120)\n"
    victim = ProcessJail("pytest-victim", network=network.victim.namespace)
    with network:
        server = subprocess.Popen(network.command("c2", [sys.executable, "-c", listener]))
        try:
            probe = victim.spawn(["sleep", "30"])
            own = os.stat(f"/proc/{probe.pid}/ns/net").st_ino
            assert own == os.stat(f"/run/netns/{network.victim.namespace}").st_ino
            assert os.stat("/proc/thread-self/ns/net").st_ino != own, "the spawner came back"
            _eventually(lambda: _reaches(victim, c2, PORT), "the victim reaches the C2 port")

            _act(BLOCK, NetworkTarget(ip=c2, port=PORT), context)
            inside = _table("ip", "netns", "exec", network.victim.namespace)
            assert f"{c2} . {PORT}" in inside.stdout
            assert (_table().returncode == 0) == host_had_table, "the host's ruleset changed"
            assert not _reaches(victim, c2, PORT), "a blocked endpoint is refused"
            _act(UNBLOCK, NetworkTarget(ip=c2, port=PORT), context)
            assert _reaches(victim, c2, PORT)

            _act(ISOLATE, HostTarget(), context)
            assert not _reaches(victim, c2, PORT), "an isolated victim reaches nothing"
            assert (_table().returncode == 0) == host_had_table
            _act(RELEASE, HostTarget(), context)
            assert _reaches(victim, c2, PORT)
        finally:
            server.kill()
            server.wait()
            victim.kill_all()
    assert (_table().returncode == 0) == host_had_table
