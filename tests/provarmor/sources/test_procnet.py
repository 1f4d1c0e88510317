"""Server roles from /proc: the socket table parsers on kernel-format lines, and a real
server process (a listening socket, then the connection it accepted) read back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from provarmor.model.event import Endpoint
from provarmor.sources import procnet
from provarmor.sources.procnet import ServerRole

HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode"
)


def _line(local: str, remote: str, state: str, inode: int) -> str:
    return (
        f"   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0 "
        f"{inode} 1 0000000000000000 100 0 0 10 0"
    )


def test_addresses_are_read_word_by_word_in_host_order() -> None:
    assert procnet.parse_address("0100007F:1538", ipv6=False) == Endpoint(ip="127.0.0.1", port=5432)
    assert procnet.parse_address("00000000:07E8", ipv6=False) == Endpoint(ip="0.0.0.0", port=2024)
    loopback6 = procnet.parse_address("00000000000000000000000001000000:0016", ipv6=True)
    assert loopback6 == Endpoint(ip="::1", port=22)
    mapped = procnet.parse_address("0000000000000000FFFF00000100007F:0050", ipv6=True)
    assert mapped == Endpoint(ip="127.0.0.1", port=80)


def test_listeners_accepted_connections_and_udp_servers() -> None:
    tcp = "\n".join(
        [
            HEADER,
            _line("0100007F:1F90", "00000000:0000", "0A", 11),  # listens on 127.0.0.1:8080
            _line("00000000:0016", "00000000:0000", "0A", 12),  # listens on 0.0.0.0:22
            _line("0100007F:1F90", "0200A8C0:9C40", "01", 13),  # accepted on 8080
            _line("0A00000A:0016", "0700000A:C350", "01", 14),  # accepted on 22 (wildcard)
            _line("0100007F:9C41", "0100007F:1F90", "01", 15),  # the client's own end
            _line("0100007F:1F90", "0200A8C0:9C42", "06", 0),  # TIME_WAIT: no inode
            "garbage",
        ]
    )
    udp = "\n".join(
        [
            HEADER,
            _line("00000000:0035", "00000000:0000", "07", 21),  # DNS server on 53
            _line("0100007F:A000", "00000000:0000", "07", 22),  # ephemeral port 40960
            _line("0100007F:0202", "0100007F:0035", "01", 23),  # connected: a client
        ]
    )
    entries = [
        *procnet.parse_socket_table(tcp, transport="tcp", ipv6=False),
        *procnet.parse_socket_table(udp, transport="udp", ipv6=False),
    ]
    assert len(entries) == 9
    roles = procnet.server_sockets(entries, ephemeral=(32768, 60999))
    assert roles == {
        11: ServerRole("tcp", listening=Endpoint(ip="127.0.0.1", port=8080)),
        12: ServerRole("tcp", listening=Endpoint(ip="0.0.0.0", port=22)),
        13: ServerRole("tcp", accepted=Endpoint(ip="192.168.0.2", port=40000)),
        14: ServerRole("tcp", accepted=Endpoint(ip="10.0.0.7", port=50000)),
        21: ServerRole("udp", listening=Endpoint(ip="0.0.0.0", port=53)),
    }


def test_a_malformed_port_range_falls_back_to_the_kernels_default() -> None:
    assert procnet.parse_port_range("1024\t65000\n") == (1024, 65000)
    assert procnet.parse_port_range("") == (32768, 60999)


SERVER = """
import socket, sys
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
print(server.getsockname()[1], flush=True)
connection, peer = server.accept()
print(peer[1], flush=True)
sys.stdin.readline()
"""


def test_a_real_server_is_seen_listening_then_holding_the_connection_it_accepted() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        listening = ServerRole("tcp", listening=Endpoint(ip="127.0.0.1", port=port))
        assert procnet.read_server_roles([child.pid]) == {child.pid: (listening,)}
        with socket.create_connection(("127.0.0.1", port)) as client:
            assert int(child.stdout.readline()) == client.getsockname()[1]
            roles = procnet.read_server_roles([child.pid, os.getpid(), 2**22 + 1])
            accepted = ServerRole(
                "tcp", accepted=Endpoint(ip="127.0.0.1", port=client.getsockname()[1])
            )
            assert roles == {child.pid: (listening, accepted)}  # the client holds none
    finally:
        child.communicate("\n", timeout=10)


def test_sockets_beyond_the_scanned_descriptors_and_unreadable_processes_are_left_out(
    tmp_path: Path,
) -> None:
    """A /proc of files: one namespace, a listener held by pid 10 at fd 3 and by pid 11
    only beyond the descriptors scanned; pid 12's namespace cannot be read."""
    (tmp_path / "sys/net/ipv4").mkdir(parents=True)
    (tmp_path / "sys/net/ipv4/ip_local_port_range").write_text("32768\t60999\n")
    for pid, fd in ((10, 3), (11, procnet.MAX_FDS_SCANNED + 5)):
        base = tmp_path / str(pid)
        (base / "ns").mkdir(parents=True)
        (base / "fd").mkdir()
        (base / "net").mkdir()
        (base / "ns/net").symlink_to("net:[4026531840]")
        (base / "net/tcp").write_text(
            f"{HEADER}\n{_line('0100007F:1F90', '00000000:0000', '0A', 77)}\n"
        )
        for number in range(fd):
            (base / "fd" / str(number)).symlink_to("/dev/null")
        (base / "fd" / str(fd)).symlink_to("socket:[77]")
    (tmp_path / "12").mkdir()
    roles = procnet.read_server_roles([10, 11, 12], proc=tmp_path)
    assert roles == {10: (ServerRole("tcp", listening=Endpoint(ip="127.0.0.1", port=8080)),)}
