from __future__ import annotations

import socket
import struct

import pytest

from provarmor.model.errors import ParseError
from provarmor.model.event import Endpoint
from provarmor.sources.auditd.sockaddr import AF_INET, AF_NETLINK, AF_UNIX, decode_sockaddr

# saddr values as recorded in tests/data/auditd (curl's connect, bash's nscd lookup,
# auditctl's netlink send)
CURL_CONNECT = "0200223D7F0000010000000000000000"
NSCD = (
    "01002F7661722F72756E2F6E7363642F736F636B657400000400000000000000A0FE7261D87F00000000"
    "000000000000000000000000FFFFFFFF00FF00FF00FFFFFFFFFFFFFF"
)
NETLINK = "100000000000000000000000"


def test_ipv4_address_and_port():
    assert decode_sockaddr(CURL_CONNECT) == (AF_INET, Endpoint(ip="127.0.0.1", port=8765))


def test_unix_path_stops_at_the_first_nul():
    assert decode_sockaddr(NSCD) == (AF_UNIX, Endpoint(address="/var/run/nscd/socket"))


def test_abstract_unix_name():
    saddr = (struct.pack("<H", AF_UNIX) + b"\0my-abstract").hex()

    assert decode_sockaddr(saddr)[1] == Endpoint(address="@my-abstract")


def test_netlink_port_id():
    assert decode_sockaddr(NETLINK) == (AF_NETLINK, Endpoint(address="netlink:0"))


def test_ipv6_and_v4_mapped_addresses():
    def sockaddr_in6(address, port):
        packed = socket.inet_pton(socket.AF_INET6, address)
        return (struct.pack("<H", 10) + struct.pack(">HI", port, 0) + packed + b"\0" * 4).hex()

    assert decode_sockaddr(sockaddr_in6("::1", 443))[1] == Endpoint(ip="::1", port=443)
    assert decode_sockaddr(sockaddr_in6("::ffff:10.0.0.1", 53))[1] == Endpoint(
        ip="10.0.0.1", port=53
    )


def test_other_families_keep_the_raw_address():
    assert decode_sockaddr("11000300AABB")[1] == Endpoint(address="family17:0300aabb")


@pytest.mark.parametrize("saddr", ["XYZ", "0", "02"])
def test_bad_addresses_raise_parse_error(saddr):
    with pytest.raises(ParseError) as info:
        decode_sockaddr(saddr, location="a.log:3")
    assert info.value.location == "a.log:3"
