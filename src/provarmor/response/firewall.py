"""ProvArmor's own nftables table, ``inet provarmor``: the only part of the host's ruleset
response ever touches (of the network namespace ``response.network_namespace`` names, when
set: then the host's own ruleset is left alone).

    sets    blocked_v4 / blocked_v6              whole remote addresses
            blocked_ports_v4 / blocked_ports_v6  remote address . port
            allowed_v4 / allowed_v6              manager, bus, allow-list (kept while isolated)
    chains  block_input / block_output           drop traffic to and from the blocked sets
            isolate_input / isolate_output       only while isolated: policy drop; loopback,
                                                 the allowed sets and IPv6 neighbour
                                                 discovery accepted

The scripts are built by pure functions and run with ``nft -f -`` (one transaction each).
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass

from provarmor.response.action import ResponseContext

TABLE = "inet provarmor"
NFT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class NftResult:
    ok: bool
    output: str


def run_nft(context: ResponseContext, *arguments: str, script: str | None = None) -> NftResult:
    command = [*context.settings.firewall_command, *arguments]
    try:
        done = subprocess.run(
            command,
            input=script,
            capture_output=True,
            text=True,
            timeout=NFT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return NftResult(ok=False, output=f"{' '.join(command)}: {exc}")
    return NftResult(ok=done.returncode == 0, output=(done.stdout + done.stderr).strip())


def apply_script(context: ResponseContext, script: str) -> NftResult:
    return run_nft(context, "-f", "-", script=script)


def table_script() -> str:
    """The table with its sets and block chains (run only when the table is missing: a
    second run would add the rules again)."""
    rules_in = "\n".join(
        (
            "    ip saddr @blocked_v4 drop",
            "    ip6 saddr @blocked_v6 drop",
            "    ip saddr . th sport @blocked_ports_v4 drop",
            "    ip6 saddr . th sport @blocked_ports_v6 drop",
        )
    )
    rules_out = rules_in.replace("saddr", "daddr").replace("sport", "dport")
    return f"""table {TABLE} {{
  set blocked_v4 {{ type ipv4_addr; flags interval; }}
  set blocked_v6 {{ type ipv6_addr; flags interval; }}
  set blocked_ports_v4 {{ type ipv4_addr . inet_service; }}
  set blocked_ports_v6 {{ type ipv6_addr . inet_service; }}
  set allowed_v4 {{ type ipv4_addr; flags interval; }}
  set allowed_v6 {{ type ipv6_addr; flags interval; }}
  chain block_input {{
    type filter hook input priority -10; policy accept;
{rules_in}
  }}
  chain block_output {{
    type filter hook output priority -10; policy accept;
{rules_out}
  }}
}}
"""


def ensure_table(context: ResponseContext) -> NftResult:
    if run_nft(context, "list", "table", *TABLE.split()).ok:
        return NftResult(ok=True, output="")
    return apply_script(context, table_script())


def element(ip: str, port: int) -> tuple[str, str]:
    """(set name, element) for a remote address and port (port 0: the whole address)."""
    address = ipaddress.ip_address(ip)
    family = "v4" if address.version == 4 else "v6"
    if port:
        return f"blocked_ports_{family}", f"{address} . {port}"
    return f"blocked_{family}", str(address)


def allowed_script(networks: tuple[str, ...]) -> str:
    """Refill the allowed sets with ``networks`` (IPs or CIDRs)."""
    lines = [f"flush set {TABLE} allowed_v4", f"flush set {TABLE} allowed_v6"]
    for network in networks:
        parsed = ipaddress.ip_network(network, strict=False)
        family = "v4" if parsed.version == 4 else "v6"
        lines.append(f"add element {TABLE} allowed_{family} {{ {parsed} }}")
    return "\n".join(lines) + "\n"


def isolation_script() -> str:
    accepted = "\n".join(
        (
            "    {lo} lo accept",
            "    ip {addr} @allowed_v4 accept",
            "    ip6 {addr} @allowed_v6 accept",
            "    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, "
            "nd-router-advert } accept",
        )
    )
    return f"""table {TABLE} {{
  chain isolate_input {{
    type filter hook input priority -20; policy drop;
{accepted.replace("{lo}", "iif").replace("{addr}", "saddr")}
  }}
  chain isolate_output {{
    type filter hook output priority -20; policy drop;
{accepted.replace("{lo}", "oif").replace("{addr}", "daddr")}
  }}
}}
"""


def release_script() -> str:
    return f"delete chain {TABLE} isolate_input\ndelete chain {TABLE} isolate_output\n"


def is_isolated(context: ResponseContext) -> bool:
    return run_nft(context, "list", "chain", *TABLE.split(), "isolate_input").ok
