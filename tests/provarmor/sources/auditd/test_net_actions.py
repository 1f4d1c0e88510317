from __future__ import annotations

from provarmor.model.actions import Action
from provarmor.sources.auditd.net_actions import transport


def test_transport_from_family_and_type():
    assert transport(2, 1) == "tcp"
    assert transport(10, 2) == "udp"
    assert transport(2, 0x80801) == "tcp"  # SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC
    assert transport(1, 1) == "unix"
    assert transport(16, 3) == "netlink"
    assert transport(99, 1) == ""


def test_failed_unix_connect_names_the_socket_path(pipeline):
    events, report = pipeline

    nscd = [e for e in events if e.event.action == Action.CONNECT]

    assert {e.destination.address for e in nscd} == {"/var/run/nscd/socket"}
    assert all(e.event.outcome == "failure" for e in nscd)
    assert all(e.network.transport == "unix" and e.network.direction == "egress" for e in nscd)
    assert report.skipped["socket_state"] == 2


def test_send_and_receive_use_the_peer_learnt_at_connect_and_accept(curl_http):
    events, _ = curl_http
    transfers = [e for e in events if e.event.action in (Action.SEND, Action.RECV)]

    curl = {(e.event.action, e.network.bytes) for e in transfers if e.process.name == "curl"}
    server = [e for e in transfers if e.process.pid == 11845]

    assert all(e.destination.ip == "127.0.0.1" for e in transfers)
    assert {e.destination.port for e in transfers if e.process.name == "curl"} == {8765}
    assert curl == {(Action.SEND, 88), (Action.RECV, 185), (Action.RECV, 44)}
    assert {e.destination.port for e in server} == {
        next(e for e in events if e.event.action == Action.ACCEPT).destination.port
    }
    assert all(e.network.transport == "tcp" for e in server)
