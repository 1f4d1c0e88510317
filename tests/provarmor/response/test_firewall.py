"""The nftables scripts: checked by nft itself (``nft -c``) inside a test namespace, and
the element names for each address family."""

import subprocess

import pytest

from provarmor.response.firewall import (
    allowed_script,
    element,
    isolation_script,
    release_script,
    table_script,
)

pytestmark = pytest.mark.privileged


def test_elements():
    assert element("192.0.2.1", 0) == ("blocked_v4", "192.0.2.1")
    assert element("192.0.2.1", 443) == ("blocked_ports_v4", "192.0.2.1 . 443")
    assert element("2001:db8::1", 0) == ("blocked_v6", "2001:db8::1")


def test_scripts_are_valid_nftables(namespaces):
    script = (
        table_script()
        + allowed_script(("192.0.2.0/24", "2001:db8::1"))
        + isolation_script()
        + release_script()
    )
    checked = subprocess.run(
        ["ip", "netns", "exec", namespaces.agent, "nft", "-c", "-f", "-"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    listed = namespaces.run(namespaces.agent, "nft", "list", "tables")
    assert "provarmor" not in listed.stdout, "-c must not change the ruleset"
