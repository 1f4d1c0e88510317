"""Automatic response during a lab run: the policy the recording agent applies, and where
the lab lets it act.

Process, file and account actions act only on processes in the lab's jails
(:data:`LAB_PROCESS_SCOPE`: what the lab started and removes afterwards). Firewall actions
(``block``, ``isolate``) change the nftables of the victim's own network namespace (see
:mod:`provarmor.lab.netns`), never this machine's: the namespace, and with it ProvArmor's
table, is removed when the run ends. The responder is given only the agent's own analysis,
never the run's ground truth.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec

from provarmor.lab.context import LabContext
from provarmor.lab.jail import JAIL_PREFIX
from provarmor.response.policy import Mode, Policy, bundled_policy, read_policy
from provarmor.response.settings import ResponseSettings

LAB_PROCESS_SCOPE = f"/{JAIL_PREFIX}"
"""The lab's jails (cgroups ``/provarmor-lab-*``: the victim's services, the attack, benign
work): the response scope of a lab run, so a lab run on a shared machine never acts on
anyone else's processes."""


def lab_policy(path: Path | None, mode: Mode | None) -> Policy:
    """The policy of ``provarmor lab run --response MODE [--response-policy FILE]``: the
    file's (the shipped containment policy without one), in ``mode`` when given."""
    policy = read_policy(path or bundled_policy())
    if mode is not None:
        policy = msgspec.structs.replace(policy, mode=mode)
    return policy


def lab_response_settings(settings: ResponseSettings, *, seed: int) -> ResponseSettings:
    """``settings`` for the run of ``seed``: acting only on the lab's jails, and on the
    firewall of that run's victim namespace (its name is drawn from the seed)."""
    victim = LabContext.from_seed(seed).network.victim
    return dataclasses.replace(
        settings, process_scope=LAB_PROCESS_SCOPE, network_namespace=victim.namespace
    )
