"""The lab's response policy: the shipped containment policy, the mode of ``--response``,
and the refusal of nftables actions (the lab's victim is this machine)."""

import pytest

from provarmor.lab.jail import JAIL_PREFIX
from provarmor.lab.response import LAB_PROCESS_SCOPE, lab_policy
from provarmor.model.errors import ConfigError, ParseError
from provarmor.response.policy import Mode, bundled_policy
from provarmor.response.records import ActionKind


def test_without_a_file_the_shipped_containment_policy_runs_in_the_mode_asked_for():
    policy = lab_policy(None, Mode.ENFORCE)
    assert policy.mode is Mode.ENFORCE
    assert policy.source == str(bundled_policy())
    (rule,) = policy.rules
    assert rule.severity == "high"
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


def test_the_scope_is_the_labs_jails():
    assert LAB_PROCESS_SCOPE == f"/{JAIL_PREFIX}"
