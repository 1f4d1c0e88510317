"""The audit rules ProvArmor needs: which syscalls the kernel must report, and how to say so
to ``auditctl``.

Used to record the test fixtures and, later, by the live agent to load and remove its rules.
This module only builds argument lists; it never runs ``auditctl`` itself.

Every rule carries a key starting with ``provarmor`` so that ProvArmor's rules can be listed
and removed (``auditctl -D -k KEY``) without touching anybody else's.
"""

from __future__ import annotations

from dataclasses import dataclass

from provarmor.sources.auditd.syscalls import ARCH_AARCH64, ARCH_I386, ARCH_X86_64, NUMBERS

KEY_PREFIX = "provarmor"

AUDITCTL_ARCH: dict[str, str] = {"b64": ARCH_X86_64, "b32": ARCH_I386}
"""``auditctl -F arch=`` value -> the ``arch`` field it matches, on an x86_64 host."""

AARCH64_AUDITCTL_ARCH: dict[str, str] = {"b64": ARCH_AARCH64}


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRule:
    """One syscall exit rule: ``-a always,exit -F arch=A -S s1,s2 [-F f]... -k key``."""

    key: str
    syscalls: tuple[str, ...]
    filters: tuple[str, ...] = ()
    """Extra ``-F`` conditions, e.g. ``a2&0x4`` (the PROT_EXEC bit of mmap's prot)."""
    io: bool = False
    """High-volume rule (socket send/receive): left out unless asked for."""


AUDIT_RULES: tuple[AuditRule, ...] = (
    AuditRule(key="provarmor_exec", syscalls=("execve", "execveat")),
    AuditRule(key="provarmor_proc", syscalls=("clone", "clone3", "fork", "vfork", "exit_group")),
    AuditRule(key="provarmor_open", syscalls=("open", "openat", "openat2", "creat")),
    AuditRule(
        key="provarmor_fmod",
        syscalls=(
            *("unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2"),
            *("link", "linkat", "symlink", "symlinkat"),
            *("chmod", "fchmod", "fchmodat", "fchmodat2"),
            *("chown", "fchown", "lchown", "fchownat", "truncate", "ftruncate"),
        ),
    ),
    AuditRule(
        key="provarmor_net", syscalls=("socket", "connect", "accept", "accept4", "bind", "listen")
    ),
    AuditRule(
        key="provarmor_netio", syscalls=("sendto", "sendmsg", "recvfrom", "recvmsg"), io=True
    ),
    AuditRule(
        key="provarmor_priv",
        syscalls=("setuid", "setreuid", "setresuid", "setgid", "setregid", "setresgid"),
    ),
    AuditRule(key="provarmor_proc_ctl", syscalls=("ptrace", "kill", "tkill", "tgkill")),
    AuditRule(key="provarmor_module", syscalls=("init_module", "finit_module")),
    AuditRule(key="provarmor_memfd", syscalls=("memfd_create",)),
    AuditRule(key="provarmor_mmap_exec", syscalls=("mmap", "mprotect"), filters=("a2&0x4",)),
)


def rule_arguments(rule: AuditRule, *, arch: str = "b64", host_arch: str = "x86_64") -> list[str]:
    """``auditctl`` arguments adding ``rule`` for ``arch`` (``b64`` or ``b32``).

    Syscalls the architecture lacks (``open`` on aarch64, ``fork`` on i386...) are left out;
    ones too new for ``auditctl``'s own tables are given by number.
    """
    arches = AARCH64_AUDITCTL_ARCH if host_arch == "aarch64" else AUDITCTL_ARCH
    numbers = NUMBERS[arches[arch]]
    names = [name for name in rule.syscalls if name in numbers]
    if not names:
        return []
    args = ["-a", "always,exit", "-F", f"arch={arch}"]
    for name in names:
        args += ["-S", name if numbers[name] < 451 else str(numbers[name])]
    for condition in rule.filters:
        args += ["-F", condition]
    return [*args, "-k", rule.key]


def auditctl_commands(
    *, arches: tuple[str, ...] = ("b64",), io: bool = True, host_arch: str = "x86_64"
) -> list[list[str]]:
    """Argument lists, one ``auditctl`` call each, that load every ProvArmor rule."""
    commands: list[list[str]] = []
    for arch in arches:
        for rule in AUDIT_RULES:
            if rule.io and not io:
                continue
            args = rule_arguments(rule, arch=arch, host_arch=host_arch)
            if args:
                commands.append(args)
    return commands


def removal_commands() -> list[list[str]]:
    """Argument lists that delete ProvArmor's rules (and only them), one key at a time."""
    return [["-D", "-k", rule.key] for rule in AUDIT_RULES]
