"""The built-in allow-list: what response never acts on, whatever the policy says.

Processes: pid 1, the agent itself, every process in ProvArmor's own cgroup (the agent's
children, the manager and lab tooling started by ``provarmor up``/``agent``/``lab run``:
see :mod:`provarmor.sources.owngroup`), sshd's listener (an ``sshd`` whose parent is not an
``sshd``: the daemon that accepts logins; the per-session ``sshd`` children are fair game),
and the package manager's processes, its own and every process below one (a transaction's
``dpkg-preconfigure``, debconf frontend, maintainer scripts: killing them half-installs a
package), unless a person named the process explicitly; with a
``process_scope`` setting, every process outside that cgroup prefix.
Networks: loopback, the manager, the bus and the allow-listed networks are never blocked. Users:
uid 0 and the protected accounts are never locked.

Each guard returns the reason it refuses, or ``None``.
"""

from __future__ import annotations

import ipaddress
import os

from provarmor.response.action import ResponseContext
from provarmor.sources.procfs import ProcessInfo, read_process


def _program(info: ProcessInfo) -> str:
    executable = info.executable.removesuffix(" (deleted)")
    return os.path.basename(executable) if executable else info.comm


def process_refusal(info: ProcessInfo, context: ResponseContext, *, explicit: bool) -> str | None:
    if info.pid == 1:
        return "pid 1 (init)"
    if info.pid == context.agent_pid:
        return "the ProvArmor agent itself"
    if info.own:
        return "a ProvArmor process (cgroup provarmor.own)"
    scope = context.settings.process_scope
    if scope and not info.cgroup.startswith(scope):
        return f"outside the response scope (cgroup {info.cgroup or '?'}, scope {scope}*)"
    program = _program(info)
    if program == "sshd":
        parent = read_process(info.ppid, clock=context.clock, proc=context.proc)
        if parent is None or _program(parent) != "sshd":
            return "sshd's listener"
    if not explicit and program in context.settings.protected_executables:
        return f"the package manager ({program}); name it explicitly to act on it"
    if not explicit and (manager := _package_transaction(info, context)) is not None:
        return f"inside a package manager transaction ({manager}); name it explicitly to act on it"
    return None


MAX_ANCESTORS = 64


def _package_transaction(info: ProcessInfo, context: ResponseContext) -> str | None:
    """The protected package manager among the process's living ancestors, as
    ``"NAME, pid N"``, or ``None``."""
    pid = info.ppid
    for _ in range(MAX_ANCESTORS):
        if pid <= 1:
            return None
        parent = read_process(pid, clock=context.clock, proc=context.proc)
        if parent is None:
            return None
        program = _program(parent)
        if program in context.settings.protected_executables:
            return f"{program}, pid {parent.pid}"
        pid = parent.ppid
    return None


def network_refusal(ip: str, context: ResponseContext) -> str | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return f"not an IP address: {ip!r}"
    if address.is_loopback or address.is_unspecified:
        return f"{ip} is this host itself (loopback stays reachable)"
    for network in context.settings.reachable_networks():
        if address in ipaddress.ip_network(network, strict=False):
            return f"{ip} is in the allow-listed network {network} (manager, bus or allow-list)"
    return None


def user_refusal(name: str, uid: int, context: ResponseContext) -> str | None:
    if uid == 0:
        return f"{name} has uid 0"
    if name in context.settings.protected_users:
        return f"{name} is a protected account"
    return None
