from provarmor.model.event import Endpoint
from provarmor.sources.sysdig.fields import parse_sysdig_line
from provarmor.sources.sysdig.sockets import endpoint, fd_kind, socket_tuple, transport


def record(data_dir, number: int):
    line = (data_dir / "sysdig" / "session.sysdig.jsonl").read_bytes().splitlines()[number - 1]
    return parse_sysdig_line(line, location=f"s:{number}")


def test_endpoint_forms():
    assert endpoint("127.0.0.1:8765") == Endpoint(ip="127.0.0.1", port=8765)
    assert endpoint("::1:8080") == Endpoint(ip="::1", port=8080)
    assert endpoint("[::1]:8080") == Endpoint(ip="::1", port=8080)
    assert endpoint("/var/run/nscd/socket") == Endpoint(address="/var/run/nscd/socket")
    assert endpoint("NULL") is None
    assert endpoint("") is None


def test_real_tuple_is_client_then_server(data_dir):
    accept = record(data_dir, 26)
    client, server = socket_tuple(accept)
    assert (client.port, server.port) == (33368, 8765)
    assert fd_kind(accept) == "4"
    assert transport(accept) == "tcp"


def test_kinds_of_real_descriptors(data_dir):
    assert fd_kind(record(data_dir, 37)) == "p"  # curl writing into the pipe
    assert fd_kind(record(data_dir, 2)) == "f"
    assert fd_kind(record(data_dir, 13)) == "u"  # connect to nscd's unix socket
    assert transport(record(data_dir, 13)) == "unix"
