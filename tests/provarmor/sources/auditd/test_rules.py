from __future__ import annotations

from provarmor.sources.auditd.mapper import HANDLERS
from provarmor.sources.auditd.rules import (
    AUDIT_RULES,
    KEY_PREFIX,
    auditctl_commands,
    removal_commands,
    rule_arguments,
)
from provarmor.sources.auditd.syscalls import ARCH_X86_64, NUMBERS


def test_every_rule_is_keyed_for_clean_removal():
    keys = [rule.key for rule in AUDIT_RULES]

    assert all(key.startswith(KEY_PREFIX) for key in keys)
    assert len(set(keys)) == len(keys)
    assert removal_commands() == [["-D", "-k", key] for key in keys]


def test_exec_rule_arguments():
    assert rule_arguments(AUDIT_RULES[0]) == [
        "-a", "always,exit", "-F", "arch=b64", "-S", "execve", "-S", "execveat",
        "-k", "provarmor_exec",
    ]  # fmt: skip


def test_mmap_rule_filters_on_prot_exec():
    (mmap_rule,) = [rule for rule in AUDIT_RULES if "mmap" in rule.syscalls]

    assert rule_arguments(mmap_rule)[-4:] == ["-F", "a2&0x4", "-k", "provarmor_mmap_exec"]


def test_calls_too_new_for_auditctl_are_given_by_number():
    (fmod,) = [rule for rule in AUDIT_RULES if "fchmodat2" in rule.syscalls]

    args = rule_arguments(fmod)

    assert "452" in args
    assert "fchmodat2" not in args


def test_aarch64_rules_leave_out_calls_it_lacks():
    args = [arg for command in auditctl_commands(host_arch="aarch64") for arg in command]

    assert "execve" in args
    assert "open" not in args
    assert "fork" not in args


def test_socket_io_rules_are_optional():
    with_io = auditctl_commands()
    without = auditctl_commands(io=False)

    assert len(with_io) == len(without) + 1
    assert not any("sendto" in command for command in without)
    assert len(auditctl_commands(arches=("b64", "b32"))) == 2 * len(with_io)


def test_every_audited_call_has_a_handler():
    audited = {name for rule in AUDIT_RULES for name in rule.syscalls}

    assert audited <= set(HANDLERS) | {"clone3"}
    assert audited <= set(NUMBERS[ARCH_X86_64])
