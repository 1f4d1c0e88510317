"""The knowledge layer: graph patterns (subject - action - object, in time order) that mean
an ATT&CK technique, in the spirit of KnowHow.

Patterns are evaluated over an incident's concise graph (:class:`GraphView`: nodes, edges,
times), never over raw events, so they see what the story shows: "a network server spawns a
shell", "a file is written then executed from /tmp", "a credential file is read, then
something connects out". Each match is a :class:`Finding` naming the technique ids, the
nodes involved and when. The tables below are plain data and easy to extend.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from provarmor.graph.records import Edge, Node, NodeKind

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"})
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "tftp", "scp", "sftp"})
ARCHIVERS = frozenset({"tar", "zip", "gzip", "bzip2", "xz", "7z", "7za", "rar", "zstd"})
TEMP_DIRS = ("/tmp/", "/dev/shm/", "/var/tmp/", "/run/shm/")  # noqa: S108  (paths matched, not used)
MASQUERADE_NAMES = frozenset(
    {
        "sshd",
        "systemd",
        "kworker",
        "irqbalance",
        "cron",
        "crond",
        "rsyslogd",
        "dbus-daemon",
        "udevd",
        "systemd-journald",
        "init",
        "atd",
        "polkitd",
        "agetty",
        "kthreadd",
    }
)
DISCOVERY: dict[str, str] = {
    "id": "T1033",
    "whoami": "T1033",
    "who": "T1033",
    "w": "T1033",
    "uname": "T1082",
    "hostname": "T1082",
    "lscpu": "T1082",
    "hostnamectl": "T1082",
    "ip": "T1016",
    "ifconfig": "T1016",
    "route": "T1016",
    "ps": "T1057",
    "pgrep": "T1057",
    "top": "T1057",
    "ss": "T1049",
    "netstat": "T1049",
    "lsof": "T1049",
    "find": "T1083",
    "ls": "T1083",
    "getent": "T1087.001",
    "ping": "T1018",
    "fping": "T1018",
    "arp": "T1018",
    "arp-scan": "T1018",
    "nmap": "T1046",
    "masscan": "T1046",
}
CREDENTIAL_FILES: tuple[tuple[str, str], ...] = (
    ("/etc/shadow", "T1003.008"),
    ("/etc/gshadow", "T1003.008"),
    ("/.ssh/id_", "T1552.004"),
    ("/.bash_history", "T1552.003"),
    ("/.zsh_history", "T1552.003"),
    ("/.aws/credentials", "T1552.001"),
    ("/.netrc", "T1552.001"),
    ("/.git-credentials", "T1552.001"),
)
PERSISTENCE_FILES: tuple[tuple[str, str], ...] = (
    ("/etc/cron", "T1053.003"),
    ("/var/spool/cron/", "T1053.003"),
    ("/etc/systemd/system/", "T1543.002"),
    ("/lib/systemd/system/", "T1543.002"),
    ("/usr/lib/systemd/system/", "T1543.002"),
    ("/.config/systemd/user/", "T1543.002"),
    ("/.bashrc", "T1546.004"),
    ("/.bash_profile", "T1546.004"),
    ("/.profile", "T1546.004"),
    ("/.zshrc", "T1546.004"),
    ("/etc/profile", "T1546.004"),
    ("/etc/bash.bashrc", "T1546.004"),
    ("/.ssh/authorized_keys", "T1098.004"),
    ("/etc/ld.so.preload", "T1574.006"),
    ("/etc/sudoers", "T1548.003"),
    ("/etc/rc.local", "T1037.004"),
    ("/etc/init.d/", "T1037.004"),
)
DISCOVERY_FILES: tuple[tuple[str, str], ...] = (
    ("/.ssh/known_hosts", "T1018"),
    ("/.ssh/config", "T1018"),
    ("/etc/hosts", "T1018"),
)
"""Files whose reading means looking for other hosts."""
_DISCOVERY_SUFFIXES = tuple(marker for marker, _ in DISCOVERY_FILES)
_CREDENTIALS = tuple(marker for marker, _ in CREDENTIAL_FILES)
WEB_PORTS = frozenset({80, 443, 8000, 8008, 8080, 8443, 8888})
DNS_PORT = 53
DNS_TOOLS = frozenset({"dig", "nslookup", "host", "drill", "kdig", "dnsenum"})
DNS_TUNNEL_MIN_QUERIES = 10
"""Flows to port 53 from one process that make it a DNS channel rather than lookups."""
UPLOAD_FLAGS = ("-T", "--upload-file", "-d", "--data", "--data-binary", "-F", "--form")
UPLOAD_FLAG_PREFIXES = ("--post-file", "--body-file", "--data-", "-d@")
HISTORY_FILES = ("/.bash_history", "/.zsh_history", "/.python_history", "/.mysql_history")
WRITES = frozenset({"write", "create", "truncate", "rename", "link"})
NETWORK_OUT = frozenset({"connect", "send"})
SCAN_MIN_ENDPOINTS = 10
SCAN_MIN_HOSTS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    pattern: str
    techniques: tuple[str, ...]
    nodes: tuple[str, ...]
    timestamp: int
    text: str


@dataclass(slots=True, kw_only=True)
class GraphView:
    """The incident graph as the patterns read it."""

    nodes: dict[str, Node]
    edges: list[Edge]
    servers: set[str] = field(default_factory=set)
    """Processes that accepted network connections (they may sit above the root cause)."""
    out: dict[str, list[Edge]] = field(default_factory=lambda: defaultdict(list))
    into: dict[str, list[Edge]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        for edge in sorted(self.edges, key=lambda e: e.first_ts):
            self.out[edge.src].append(edge)
            self.into[edge.dst].append(edge)

    def processes(self) -> Iterator[Node]:
        return (n for n in self.nodes.values() if n.kind is NodeKind.PROCESS)

    def name(self, node_id: str) -> str:
        node = self.nodes.get(node_id)
        return program_name(node) if node is not None else ""


def program_name(node: Node) -> str:
    return (node.executable or node.label).rsplit("/", 1)[-1]


def program_known(node: Node) -> bool:
    """Whether the sensor saw the program of a process (else its label is only ``pid N``)."""
    return bool(node.executable) or not node.label.startswith("pid ")


_WILDCARDS = frozenset({"0.0.0.0", "::", "*"})  # noqa: S104 (addresses compared, not bound)


def is_contacted_endpoint(node: Node) -> bool:
    """A network peer: a socket with an address and a port, not a wildcard (``0.0.0.0:0``)
    and not a local (unix) socket such as ``/var/run/nscd/socket``."""
    if node.kind is not NodeKind.SOCKET or not node.ip or node.port <= 0:
        return False
    return node.ip not in _WILDCARDS and not node.ip.startswith("0.")


def path_of(node: Node) -> str:
    return node.path or node.label


@functools.lru_cache(maxsize=65_536)
def is_sensitive_path(path: str) -> bool:
    """A file worth showing when an attack's process only read it (credentials, lists of
    other hosts)."""
    return path.endswith(_DISCOVERY_SUFFIXES) or any(marker in path for marker in _CREDENTIALS)


# ---------------------------------------------------------------------- patterns
def _server_spawns_shell(view: GraphView) -> Iterator[Finding]:
    for server in view.servers:
        for edge in view.out.get(server, ()):
            if edge.action == "fork" and view.name(edge.dst) in SHELLS:
                yield Finding(
                    pattern="server-spawns-shell",
                    techniques=("T1190", "T1059.004"),
                    nodes=(server, edge.dst),
                    timestamp=edge.first_ts,
                    text=f"network server {view.name(server)} started a shell",
                )


def _shell_runs_commands(view: GraphView) -> Iterator[Finding]:
    for node in view.processes():
        name = program_name(node)
        if name in SHELLS and " -c " in f" {node.command_line} ":
            yield Finding(
                pattern="shell-command",
                techniques=("T1059.004",),
                nodes=(node.id,),
                timestamp=node.first_ts,
                text=f"{name} ran a command line",
            )
        elif name.startswith("python") and _python_code(node.command_line):
            yield Finding(
                pattern="python-inline",
                techniques=("T1059.006",),
                nodes=(node.id,),
                timestamp=node.first_ts,
                text=f"python ran {_python_code(node.command_line)}",
            )
        elif name == "base64" and " -d" in node.command_line:
            yield Finding(
                pattern="decode",
                techniques=("T1140",),
                nodes=(node.id,),
                timestamp=node.first_ts,
                text="base64 decoded data",
            )


def _python_code(command_line: str) -> str:
    """What a python command line runs that an attacker would: inline code, a script piped
    in on standard input, or a script from a temporary or hidden directory ('' if none)."""
    words = command_line.split()
    if "-c" in words[1:]:
        return "inline code"
    if words[1:] and words[-1] == "-":
        return "a script piped in on its standard input"
    scripts = [w for w in words[1:] if w.endswith(".py")]
    if scripts and (scripts[0].startswith(TEMP_DIRS) or "/." in scripts[0]):
        return f"the script {scripts[0]}"
    return ""


def _discovery(view: GraphView) -> Iterator[Finding]:
    for node in view.processes():
        technique = DISCOVERY.get(program_name(node))
        if node.command_line.startswith("cat ") and "/etc/passwd" in node.command_line:
            technique = "T1087.001"
        words = node.command_line.split()
        if program_name(node) == "ip" and len(words) > 1 and words[1] in ("neigh", "n", "neighbor"):
            technique = "T1018"
        if technique is not None:
            yield Finding(
                pattern="discovery",
                techniques=(technique,),
                nodes=(node.id,),
                timestamp=node.first_ts,
                text=f"{program_name(node)} (discovery)",
            )


def _dropped_and_run(view: GraphView) -> Iterator[Finding]:
    """A file an attack process wrote is later executed."""
    for file_id, into in view.into.items():
        node = view.nodes.get(file_id)
        if node is None or node.kind is not NodeKind.FILE:
            continue
        writes = [e for e in into if e.action in WRITES and e.src in view.nodes]
        if not writes:
            continue
        runs = [e for e in view.out.get(file_id, ()) if e.action in ("exec", "mmap_exec")]
        runs = [e for e in runs if e.last_ts >= writes[0].first_ts]
        if not runs:
            continue
        yield from _dropped_findings(view, node, writes[0], runs[0])


def _dropped_findings(view: GraphView, file: Node, write: Edge, run: Edge) -> Iterator[Finding]:
    path = path_of(file)
    name = path.rsplit("/", 1)[-1]
    techniques: list[str] = []
    writer = write.src
    downloaded = (
        view.name(writer) in DOWNLOADERS
        or any(e.action in NETWORK_OUT or e.action == "recv" for e in view.out.get(writer, ()))
        or any(e.action == "recv" for e in view.into.get(writer, ()))
    )
    if downloaded:
        techniques.append("T1105")
    if "/." in path:
        techniques.append("T1564.001")
    if name in MASQUERADE_NAMES or name.split("-")[0] in MASQUERADE_NAMES:
        techniques.append("T1036.005")
    if path.startswith(TEMP_DIRS) and not downloaded:
        techniques.append("T1204.002")
    if path.startswith("memfd:"):
        techniques += ["T1620", "T1027.011"]
    if any(e.action == "connect" for e in view.out.get(run.dst, ())):
        techniques.append("T1071.001")
    if techniques:
        yield Finding(
            pattern="written-then-executed",
            techniques=tuple(techniques),
            nodes=(writer, file.id, run.dst),
            timestamp=run.first_ts,
            text=f"{view.name(writer)} wrote {path}, which was then executed",
        )


def _dropped_script(view: GraphView) -> Iterator[Finding]:
    """An interpreter read a script an attack process wrote (``python3 scan.py`` after the
    scanner was unpacked): the interpreter ran attacker code."""
    interpreters = {"python": "T1059.006", "sh": "T1059.004", "bash": "T1059.004"}
    for node in view.processes():
        name = program_name(node)
        technique = next((t for k, t in interpreters.items() if name.startswith(k)), None)
        if technique is None:
            continue
        for read in view.into.get(node.id, ()):
            script = view.nodes.get(read.src)
            if read.action not in ("open", "read") or script is None:
                continue
            if not path_of(script).endswith((".py", ".sh")):
                continue
            written = [e for e in view.into.get(script.id, ()) if e.action in WRITES]
            if any(e.first_ts <= read.last_ts for e in written):
                yield Finding(
                    pattern="dropped-script-run",
                    techniques=(technique,),
                    nodes=(written[0].src, script.id, node.id),
                    timestamp=read.first_ts,
                    text=f"{name} ran {path_of(script)}, written by {view.name(written[0].src)}",
                )
                break


def _file_actions(view: GraphView) -> Iterator[Finding]:
    for edge in view.edges:
        node = view.nodes.get(edge.dst)
        if node is None or node.kind is not NodeKind.FILE or edge.src not in view.nodes:
            continue
        path = path_of(node)
        found: list[str] = []
        if edge.action == "chmod" and any(e.action in WRITES for e in view.into.get(node.id, ())):
            found.append("T1222.002")
        if edge.action == "memfd_create":
            found += ["T1620", "T1027.011"]
        if edge.action in WRITES:
            found += [t for marker, t in PERSISTENCE_FILES if marker in path]
        if edge.action in ("delete", "truncate") or (
            edge.action == "write" and path.startswith("/var/log/")
        ):
            if path.startswith("/var/log/"):
                found.append("T1070.002")
            elif path.endswith(HISTORY_FILES):
                found.append("T1070.003")
            elif edge.action == "delete" and any(
                (e.action in WRITES and e.src != edge.src) or e.action == "create"
                for e in view.into.get(node.id, ())
            ):
                found.append("T1070.004")
        if found:
            yield Finding(
                pattern=f"file-{edge.action}",
                techniques=tuple(dict.fromkeys(found)),
                nodes=(edge.src, node.id),
                timestamp=edge.first_ts,
                text=f"{view.name(edge.src)} {edge.action} {path}",
            )


def _credentials_then_out(view: GraphView) -> Iterator[Finding]:
    outs = [e for e in view.edges if e.action in NETWORK_OUT and _remote(view, e.dst)]
    for edge in view.edges:
        node = view.nodes.get(edge.src)
        if node is None or node.kind is not NodeKind.FILE or edge.action not in ("open", "read"):
            continue
        path = path_of(node)
        techniques = [t for marker, t in CREDENTIAL_FILES if marker in path]
        if not techniques:
            continue
        if any(o.first_ts >= edge.first_ts for o in outs):
            techniques.append("T1041")
        yield Finding(
            pattern="credential-read",
            techniques=tuple(techniques),
            nodes=(node.id, edge.dst),
            timestamp=edge.first_ts,
            text=f"{view.name(edge.dst)} read {path}",
        )


def _archive_then_send(view: GraphView) -> Iterator[Finding]:
    c2 = _c2_endpoints(view)
    for edge in view.edges:
        if edge.action not in WRITES or view.name(edge.src) not in ARCHIVERS:
            continue
        for read in view.out.get(edge.dst, ()):
            if read.action not in ("open", "read") or read.last_ts < edge.first_ts:
                continue
            sends = [
                e
                for e in view.out.get(read.dst, ())
                if e.action in NETWORK_OUT and _remote(view, e.dst)
            ]
            if sends:
                exfil = "T1041" if sends[0].dst in c2 else "T1048.003"
                yield Finding(
                    pattern="archive-then-send",
                    techniques=("T1560.001", exfil),
                    nodes=(edge.src, edge.dst, read.dst, sends[0].dst),
                    timestamp=sends[0].first_ts,
                    text=f"{view.name(read.dst)} sent an archive to "
                    f"{view.nodes[sends[0].dst].label}",
                )
                break


def _network(view: GraphView) -> Iterator[Finding]:
    for node in view.processes():
        peers = [e.dst for e in view.out.get(node.id, ()) if e.action == "connect"]
        remote = [p for p in dict.fromkeys(peers) if _remote(view, p)]
        name = program_name(node)
        if len(remote) >= SCAN_MIN_ENDPOINTS:
            yield Finding(
                pattern="scan",
                techniques=("T1046",),
                nodes=(node.id,),
                timestamp=node.first_ts,
                text=f"{name} connected to {len(remote)} endpoints",
            )
        if name in ("ssh",) and " -i " in f" {node.command_line} ":
            yield Finding(
                pattern="ssh-with-key",
                techniques=("T1021.004",),
                nodes=(node.id,),
                timestamp=node.first_ts,
                text="ssh to another host with a key file",
            )
        if name == "scp":
            yield Finding(
                pattern="remote-copy",
                techniques=("T1570",),
                nodes=(node.id,),
                timestamp=node.first_ts,
                text="scp copied files to another host",
            )
        if name in SHELLS and remote:
            yield Finding(
                pattern="reverse-shell",
                techniques=("T1059.004", "T1095"),
                nodes=(node.id,),
                timestamp=node.first_ts,
                text=f"{name} talks to a remote endpoint",
            )
        if name in ("nc", "ncat", "netcat", "socat") and remote:
            yield Finding(
                pattern="raw-socket-tool",
                techniques=("T1095",),
                nodes=(node.id,),
                timestamp=node.first_ts,
                text=f"{name} opened a raw connection",
            )


def _looked_for_hosts(view: GraphView) -> Iterator[Finding]:
    """A process read a file that lists other hosts (known_hosts, ssh config, /etc/hosts)
    after it was written by someone, or reached several hosts (remote system discovery)."""
    for edge in view.edges:
        node = view.nodes.get(edge.src)
        if node is None or node.kind is not NodeKind.FILE or edge.action not in ("open", "read"):
            continue
        path = path_of(node)
        found = [t for marker, t in DISCOVERY_FILES if path.endswith(marker)]
        if found and edge.dst in view.nodes:
            yield Finding(
                pattern="hosts-file-read",
                techniques=tuple(found),
                nodes=(node.id, edge.dst),
                timestamp=edge.first_ts,
                text=f"{view.name(edge.dst)} read {path}",
            )
    for node in view.processes():
        hosts = {
            view.nodes[e.dst].ip
            for e in view.out.get(node.id, ())
            if e.action == "connect" and _remote(view, e.dst)
        }
        if len(hosts) >= SCAN_MIN_HOSTS:
            yield Finding(
                pattern="host-sweep",
                techniques=("T1018",),
                nodes=(node.id,),
                timestamp=node.first_ts,
                text=f"{program_name(node)} reached {len(hosts)} hosts",
            )


def _application_protocols(view: GraphView) -> Iterator[Finding]:
    """C2 and transfer over web protocols (a process of the attack talking HTTP(S) to a
    remote endpoint) and over DNS (many queries from one process, or a DNS tool)."""
    for node in view.processes():
        name = program_name(node)
        flows = [e for e in view.out.get(node.id, ()) if e.action in NETWORK_OUT]
        web = [e for e in flows if _remote(view, e.dst) and view.nodes[e.dst].port in WEB_PORTS]
        if web:
            yield Finding(
                pattern="web-protocol",
                techniques=("T1071.001",),
                nodes=(node.id, web[0].dst),
                timestamp=web[0].first_ts,
                text=f"{name} talked HTTP to {view.nodes[web[0].dst].label}",
            )
        dns = [e for e in flows if _port_of(view, e.dst) == DNS_PORT]
        queries = sum(e.count for e in dns)
        if dns and (queries >= DNS_TUNNEL_MIN_QUERIES or name in DNS_TOOLS):
            yield Finding(
                pattern="dns-channel",
                techniques=("T1071.004",),
                nodes=(node.id, dns[0].dst),
                timestamp=dns[0].first_ts,
                text=f"{name} sent {queries} DNS queries",
            )


def _exfiltration_to_c2(view: GraphView) -> Iterator[Finding]:
    """Data uploaded to a host the attack fetched code or commands from (the C2 server)."""
    c2_hosts = {view.nodes[e].ip for e in _c2_endpoints(view) if e in view.nodes}
    fetched = _fetch_hosts(view)
    for node in view.processes():
        if not _is_upload(node):
            continue
        for edge in view.out.get(node.id, ()):
            if edge.action not in NETWORK_OUT or not _remote(view, edge.dst):
                continue
            host = view.nodes[edge.dst].ip
            if host in c2_hosts or fetched.get(host, edge.first_ts) < edge.first_ts:
                yield Finding(
                    pattern="upload-to-c2",
                    techniques=("T1041",),
                    nodes=(node.id, edge.dst),
                    timestamp=edge.first_ts,
                    text=f"{program_name(node)} uploaded data to {view.nodes[edge.dst].label}, "
                    "where the attack got its code",
                )
                break


def _fetch_hosts(view: GraphView) -> dict[str, int]:
    """Remote hosts a downloader fetched from for an interpreter or a dropped program
    (``curl URL | python3 -``, or a download later executed): host -> first fetch."""
    hosts: dict[str, int] = {}
    for node in view.processes():
        if program_name(node) not in DOWNLOADERS or _is_upload(node):
            continue
        parent = view.nodes.get(node.parent)
        siblings = view.out.get(parent.id, ()) if parent is not None else ()
        piped = any(
            e.action == "fork" and e.dst != node.id and view.name(e.dst).startswith("python")
            for e in siblings
        )
        dropped = any(
            e.action in WRITES and any(x.action == "exec" for x in view.out.get(e.dst, ()))
            for e in view.out.get(node.id, ())
        )
        if not (piped or dropped):
            continue
        for edge in view.out.get(node.id, ()):
            if edge.action in NETWORK_OUT and _remote(view, edge.dst):
                host = view.nodes[edge.dst].ip
                hosts[host] = min(hosts.get(host, edge.first_ts), edge.first_ts)
    return hosts


def _is_upload(node: Node) -> bool:
    words = node.command_line.split()
    return program_name(node) in ("curl", "wget") and any(
        w in UPLOAD_FLAGS or w.startswith(UPLOAD_FLAG_PREFIXES) for w in words[1:]
    )


def _port_of(view: GraphView, node_id: str) -> int:
    node = view.nodes.get(node_id)
    return node.port if node is not None and node.kind is NodeKind.SOCKET else 0


def _privilege(view: GraphView) -> Iterator[Finding]:
    for edge in view.edges:
        if edge.action != "fork":
            continue
        parent, child = view.nodes.get(edge.src), view.nodes.get(edge.dst)
        if parent is None or child is None or child.user != "0" or parent.user in ("", "0"):
            continue
        via = program_name(child)
        technique = "T1548.003" if via in ("sudo", "su", "doas") else "T1548.001"
        yield Finding(
            pattern="privilege-gain",
            techniques=(technique,),
            nodes=(edge.src, edge.dst),
            timestamp=edge.first_ts,
            text=f"{via} runs as root for user {parent.user}",
        )


def _remote(view: GraphView, node_id: str) -> bool:
    node = view.nodes.get(node_id)
    return node is not None and node.kind is NodeKind.SOCKET and bool(node.ip) and node.port != 53


def _c2_endpoints(view: GraphView) -> set[str]:
    """Endpoints an executed dropped file talked to."""
    dropped = {
        e.dst
        for e in view.edges
        if e.action == "exec" and any(w.action in WRITES for w in view.into.get(e.src, ()))
    }
    return {e.dst for e in view.edges if e.src in dropped and e.action in NETWORK_OUT}


PATTERNS: tuple[Callable[[GraphView], Iterator[Finding]], ...] = (
    _server_spawns_shell,
    _shell_runs_commands,
    _discovery,
    _dropped_and_run,
    _dropped_script,
    _file_actions,
    _credentials_then_out,
    _archive_then_send,
    _network,
    _looked_for_hosts,
    _application_protocols,
    _exfiltration_to_c2,
    _privilege,
)
"""Every pattern; each yields :class:`Finding` values."""


def find_techniques(view: GraphView) -> list[Finding]:
    """All findings, in time order."""
    findings = [finding for pattern in PATTERNS for finding in pattern(view)]
    return sorted(findings, key=lambda f: (f.timestamp, f.pattern))
