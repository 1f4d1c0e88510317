"""The lab's response policy: the shipped containment policy, the mode of ``--response``,
and the refusal of nftables actions (the lab's victim is this machine)."""

import os

import pytest

from provarmor.lab.jail import ProcessJail
from provarmor.lab.response import LAB_PROCESS_SCOPE, lab_policy
from provarmor.model.errors import ConfigError, ParseError
from provarmor.response.policy import Mode, bundled_policy
from provarmor.response.records import ActionKind
from provarmor.sources.procfs import read_clock, read_process


def test_without_a_file_the_shipped_containment_policy_runs_in_the_mode_asked_for():
    policy = lab_policy(None, Mode.ENFORCE)
    assert policy.mode is Mode.ENFORCE
    assert policy.source == str(bundled_policy())
    high, downloaded = policy.rules
    assert (high.severity, high.lineage) == ("high", ())
    assert (downloaded.severity, downloaded.lineage) == ("medium", ("downloaded",))
    for rule in policy.rules:
        assert rule.actions == (ActionKind.KILL, ActionKind.QUARANTINE)


def test_the_files_mode_holds_when_no_mode_is_asked_for(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("mode: dry-run\nrules:\n  - name: r\n    actions: [suspend]\n")
    assert lab_policy(path, None).mode is Mode.DRY_RUN
    assert lab_policy(path, Mode.ENFORCE).mode is Mode.ENFORCE


@pytest.mark.parametrize("action", ["block", "isolate"])
def test_nftables_actions_are_refused_naming_the_rule_and_file(tmp_path, action):
    path = tmp_path / "policy.yaml"
    path.write_text(f"mode: enforce\nrules:\n  - name: cut c2\n    actions: [kill, {action}]\n")
    with pytest.raises(ConfigError, match=f"rule 'cut c2': {action} would change") as caught:
        lab_policy(path, None)
    assert caught.value.location == str(path)
    with pytest.raises(ConfigError):
        lab_policy(path, Mode.DRY_RUN)
    assert lab_policy(path, Mode.OFF).mode is Mode.OFF  # off runs nothing


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
