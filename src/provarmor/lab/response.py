"""Automatic response during a lab run: the policy the recording agent applies, and what the
lab lets it do.

The lab's victim is this machine itself (its own network namespace: the lab's namespaces
stand for the attacker's and the second host's side, see :mod:`provarmor.lab.netns`), so an
nftables action (``block``, ``isolate``) would change this host's own firewall, which a lab
run never does: a policy asking for one is refused before anything starts. Process, file
and account actions act on what the lab started and removes afterwards: only on processes
in the lab's jails (:data:`LAB_PROCESS_SCOPE`). The responder is given only the agent's own
analysis, never the run's ground truth.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from provarmor.lab.jail import JAIL_PREFIX
from provarmor.model.errors import ConfigError
from provarmor.response.policy import Mode, Policy, bundled_policy, read_policy
from provarmor.response.records import ActionKind

HOST_FIREWALL_ACTIONS = frozenset({ActionKind.BLOCK, ActionKind.ISOLATE})
"""Actions that change the nftables of the namespace the agent runs in: the host's own."""
LAB_PROCESS_SCOPE = f"/{JAIL_PREFIX}"
"""The lab's jails (cgroups ``/provarmor-lab-*``: the victim's services, the attack, benign
work): the response scope of a lab run, so a lab run on a shared machine never acts on
anyone else's processes."""


def lab_policy(path: Path | None, mode: Mode | None) -> Policy:
    """The policy of ``provarmor lab run --response MODE [--response-policy FILE]``: the
    file's (the shipped containment policy without one), in ``mode`` when given."""
    source = path or bundled_policy()
    policy = read_policy(source)
    if mode is not None:
        policy = msgspec.structs.replace(policy, mode=mode)
    if policy.mode is Mode.OFF:
        return policy
    for rule in policy.rules:
        firewall = sorted(a.value for a in rule.actions if a in HOST_FIREWALL_ACTIONS)
        if firewall:
            raise ConfigError(
                f"rule {rule.name!r}: {', '.join(firewall)} would change this host's own "
                "nftables (the lab's victim is this machine); a lab run responds with "
                "kill, suspend, quarantine and lock_user only",
                location=str(source),
            )
    return policy
