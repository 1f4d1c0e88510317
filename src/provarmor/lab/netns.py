"""The lab's network: namespaces that stand in for other hosts, joined by a private bridge.

Each role (the second host, the C2 server, the exfiltration sink, the DNS-like sink ...) is a
network namespace ``provarmor-lab-<token>`` holding one end of a veth pair, renamed
``eth0``, with an address in 10.213.0.0/24. The other ends hang on a bridge in the root
namespace that holds 10.213.0.1. The victim's network side has a namespace of its own too
(:attr:`LabNetwork.victim`, always 10.213.0.2): its services listen there, what they and the
lab's users start lives there, and the attack addresses it, so the responder's firewall
actions (``block``, ``isolate``) change that namespace's nftables, never this machine's
own (removing the namespace removes them). The roles and the victim reach each other.
Nothing is routed anywhere else: the bridge has no uplink, the namespaces have no default
route, IPv6 is switched off on every lab interface, and while the lab exists a
low-priority blackhole route for 10.213.0.0/24 drops lab-range packets that miss the
bridge, so no packet for the lab range can leave the machine and no process in a lab
namespace can reach a real address.

Namespace names and addresses are drawn from the run's seed. :class:`LabNetwork` removes what
it made on ``__exit__``, at interpreter exit, and :func:`cleanup_network` removes what a
crashed run left (every ``provarmor-lab-*`` namespace and every ``pvl*`` link).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ipaddress
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from provarmor.lab.containment import LAB_SUBNET, Containment
from provarmor.lab.naming import Names

NAMESPACE_PREFIX = "provarmor-lab-"
LINK_PREFIX = "pvl"
BRIDGE_ADDRESS = str(LAB_SUBNET.network_address + 1)
VICTIM_ADDRESS = str(LAB_SUBNET.network_address + 2)
"""The victim's address (the role addresses are drawn from .10 up)."""
VICTIM_ROLE = "victim"
_CLONE_NEWNET = 0x40000000
_PREFIX_LENGTH = LAB_SUBNET.prefixlen
_BLACKHOLE = ("blackhole", str(LAB_SUBNET), "metric", "4000")
"""While the lab exists, lab-range packets that miss the bridge are dropped, never routed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabHost:
    """One role's namespace: its name, its address and the bridge end of its veth."""

    role: str
    namespace: str
    address: str
    link: str


def _ip(*args: str, namespace: str = "") -> None:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    command = [*prefix, "ip", *args] if namespace else ["ip", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=20)


def _disable_ipv6_here(interface: str) -> None:
    path = Path("/proc/sys/net/ipv6/conf") / interface / "disable_ipv6"
    with contextlib.suppress(OSError):
        path.write_text("1\n")


class LabNetwork:
    """The namespaces for ``roles``; use as a context manager (or call create/destroy)."""

    def __init__(self, *, roles: Sequence[str], names: Names) -> None:
        tag = names.token(4)
        octets = names.host_octets(len(roles))
        self.bridge = f"{LINK_PREFIX}{tag}br"
        self.hosts: dict[str, LabHost] = {}
        for index, (role, octet) in enumerate(zip(roles, octets, strict=True)):
            self.hosts[role] = LabHost(
                role=role,
                namespace=f"{NAMESPACE_PREFIX}{names.token(6)}",
                address=str(LAB_SUBNET.network_address + octet),
                link=f"{LINK_PREFIX}{tag}h{index}",
            )
        self.victim = LabHost(
            role=VICTIM_ROLE,
            namespace=f"{NAMESPACE_PREFIX}v{tag}",
            address=VICTIM_ADDRESS,
            link=f"{LINK_PREFIX}{tag}hv",
        )
        self._created = False

    def host(self, role: str) -> LabHost:
        """``role``'s namespace (:data:`VICTIM_ROLE`: the victim's)."""
        return self.victim if role == VICTIM_ROLE else self.hosts[role]

    def address(self, role: str) -> str:
        return self.host(role).address

    def namespace(self, role: str) -> str:
        return self.host(role).namespace

    def command(self, role: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``role``'s namespace."""
        return ["ip", "netns", "exec", self.host(role).namespace, *argv]

    def containment(self) -> Containment:
        """The guard for this network: loopback, the bridge and the role addresses."""
        hosts = (*self.hosts.values(), self.victim)
        addresses = {ipaddress.ip_address(host.address) for host in hosts}
        addresses.add(ipaddress.ip_address(BRIDGE_ADDRESS))
        aliases = {f"{host.role}.lab": host.address for host in hosts}
        return Containment(lab_addresses=frozenset(addresses), aliases=aliases)

    def create(self) -> None:
        """Create the bridge and every namespace; on failure remove what was made."""
        atexit.register(self.destroy)
        self._created = True
        try:
            _ip("route", "replace", *_BLACKHOLE)
            _ip("link", "add", self.bridge, "type", "bridge")
            _disable_ipv6_here(self.bridge)
            _ip("addr", "add", f"{BRIDGE_ADDRESS}/{_PREFIX_LENGTH}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for host in (*self.hosts.values(), self.victim):
                self._create_host(host)
        except BaseException:
            self.destroy()
            raise

    def _create_host(self, host: LabHost) -> None:
        peer = f"{host.link[:-1]}p{host.link[-1]}"
        subprocess.run(["ip", "netns", "add", host.namespace], check=True, capture_output=True)
        _ip("link", "add", host.link, "type", "veth", "peer", "name", peer)
        _disable_ipv6_here(host.link)
        _ip("link", "set", host.link, "master", self.bridge)
        _ip("link", "set", host.link, "up")
        _ip("link", "set", peer, "netns", host.namespace)
        sysctl = ["ip", "netns", "exec", host.namespace, "sysctl", "-q", "-w"]
        subprocess.run(
            [*sysctl, "net.ipv6.conf.all.disable_ipv6=1"], check=False, capture_output=True
        )
        _ip("link", "set", peer, "name", "eth0", namespace=host.namespace)
        address = f"{host.address}/{_PREFIX_LENGTH}"
        _ip("addr", "add", address, "dev", "eth0", namespace=host.namespace)
        _ip("link", "set", "eth0", "up", namespace=host.namespace)
        _ip("link", "set", "lo", "up", namespace=host.namespace)

    def destroy(self) -> None:
        """Kill what runs in the namespaces and remove them and the bridge. Idempotent."""
        if not self._created:
            return
        self._created = False
        for host in (*self.hosts.values(), self.victim):
            remove_namespace(host.namespace)
            _delete_link(host.link)
        _delete_link(self.bridge)
        _delete_blackhole()
        atexit.unregister(self.destroy)

    def __enter__(self) -> Self:
        self.create()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.destroy()


@contextlib.contextmanager
def entered(namespace: str) -> Iterator[None]:
    """The calling thread runs in network namespace ``namespace`` (an ``ip netns`` name)
    until the block ends: the sockets it opens and the processes it starts there belong to
    that namespace (theirs for good; other threads are not affected)."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/run/netns/{namespace}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(target, _CLONE_NEWNET) != 0:
                error = ctypes.get_errno()
                raise OSError(error, f"setns into network namespace {namespace}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            if libc.setns(home, _CLONE_NEWNET) != 0:
                error = ctypes.get_errno()
                raise OSError(error, "setns back into this thread's network namespace")
    finally:
        os.close(home)


def _delete_blackhole() -> bool:
    result = subprocess.run(["ip", "route", "del", *_BLACKHOLE], check=False, capture_output=True)
    return result.returncode == 0


def _delete_link(name: str) -> None:
    subprocess.run(["ip", "link", "del", name], check=False, capture_output=True, timeout=20)


def namespace_pids(namespace: str) -> list[int]:
    """The processes whose network namespace is ``namespace``."""
    result = subprocess.run(
        ["ip", "netns", "pids", namespace], check=False, capture_output=True, text=True
    )
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def remove_namespace(namespace: str) -> None:
    """Kill every process in ``namespace``, then delete it."""
    for pid in namespace_pids(namespace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True, timeout=20)


def lab_namespaces() -> list[str]:
    """Every ``provarmor-lab-*`` namespace that exists now."""
    result = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True)
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    return [name for name in names if name.startswith(NAMESPACE_PREFIX)]


def lab_links() -> list[str]:
    """Every ``pvl*`` link in the root namespace."""
    result = subprocess.run(
        ["ip", "-o", "link", "show"], check=False, capture_output=True, text=True
    )
    links = []
    for line in result.stdout.splitlines():
        fields = line.split(":", 2)
        if len(fields) >= 2:
            name = fields[1].strip().split("@", 1)[0]
            if name.startswith(LINK_PREFIX):
                links.append(name)
    return links


def cleanup_network() -> list[str]:
    """Remove every lab namespace and link a crashed run left; returns what was removed."""
    removed = []
    for namespace in lab_namespaces():
        remove_namespace(namespace)
        removed.append(f"netns {namespace}")
    for link in lab_links():
        _delete_link(link)
        removed.append(f"link {link}")
    if _delete_blackhole():
        removed.append(f"route blackhole {LAB_SUBNET}")
    return removed
