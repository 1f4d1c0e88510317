from provarmor.model.actions import Action
from provarmor.sources.base import HostContext
from provarmor.sources.sysdig.fields import parse_sysdig_line
from provarmor.sources.sysdig.network import network_parts
from provarmor.sources.sysdig.processes import ProcessTable


def record(data_dir, number: int):
    line = (data_dir / "sysdig" / "session.sysdig.jsonl").read_bytes().splitlines()[number - 1]
    return parse_sysdig_line(line, location=f"s:{number}")


def test_bind_and_listen_set_source_and_mark_the_server_port(data_dir):
    server = ProcessTable(HostContext()).seen(7931, at=0)
    source, destination, network = network_parts(record(data_dir, 12), server, Action.BIND)
    assert (source.ip, source.port, destination) == ("127.0.0.1", 8765, None)
    assert network.direction == ""
    assert server.server_ports == {8765}


def test_same_tuple_reads_from_each_side(data_dir):
    table = ProcessTable(HostContext())
    client, server = table.seen(7933, at=0), table.seen(7931, at=0)
    server.server_ports.add(8765)
    sent = network_parts(record(data_dir, 27), client, Action.SEND)
    received = network_parts(record(data_dir, 29), server, Action.RECV)
    assert (sent[0].port, sent[1].port, sent[2].direction) == (33368, 8765, "egress")
    assert (received[0].port, received[1].port, received[2].direction) == (8765, 33368, "ingress")
    assert received[2].bytes == 87


def test_connect_without_tuple_uses_addr(data_dir):
    curl = ProcessTable(HostContext()).seen(7933, at=0)
    source, destination, _ = network_parts(record(data_dir, 25), curl, Action.CONNECT)
    assert source is None
    assert (destination.ip, destination.port) == ("127.0.0.1", 8765)
