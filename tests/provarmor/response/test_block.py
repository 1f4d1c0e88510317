"""``block``/``unblock`` on real nftables, inside a network namespace of the test's own:
the element is in ``inet provarmor`` and traffic to the address (or just that port) stops;
unblock brings it back. Allow-listed addresses are never blocked."""

import dataclasses
import socket
import subprocess
import sys

import pytest

from provarmor.response.block import BLOCK, UNBLOCK
from provarmor.response.records import ActionKind, ActionRequest, NetworkTarget, Outcome

from .conftest import wait_for

pytestmark = pytest.mark.privileged


@pytest.fixture
def inside(context, namespaces):
    settings = dataclasses.replace(
        context.settings, network_namespace=namespaces.agent, manager_addresses=("10.231.0.3",)
    )
    return dataclasses.replace(context, settings=settings)


def act(kind: ActionKind, context, ip: str, port: int = 0):
    action = BLOCK if kind is ActionKind.BLOCK else UNBLOCK
    target = NetworkTarget(ip=ip, port=port)
    return action.run(ActionRequest(id="b", kind=kind, target=target, requested_by="t"), context)


def table(namespaces) -> str:
    return namespaces.run(namespaces.agent, "nft", "list", "table", "inet", "provarmor").stdout


def test_block_and_unblock_an_address(inside, namespaces):
    result = act(ActionKind.BLOCK, inside, "10.231.0.2")
    assert result.outcome is Outcome.DONE, result.message
    assert "10.231.0.2" in table(namespaces)
    assert not namespaces.reaches("10.231.0.2")
    assert namespaces.reaches("10.231.0.3"), "only the blocked address is cut off"
    assert act(ActionKind.UNBLOCK, inside, "10.231.0.2").outcome is Outcome.DONE
    assert "10.231.0.2" not in table(namespaces)
    assert namespaces.reaches("10.231.0.2")


def connects(namespaces, port: int) -> bool:
    probe = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(1)\n"
        "sys.exit(s.connect_ex(('10.231.0.2', int(sys.argv[1]))))\n"
    )
    done = namespaces.run(namespaces.agent, sys.executable, "-c", probe, str(port))
    return done.returncode == 0


def test_block_one_port_of_an_address(inside, namespaces):
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            namespaces.peer,
            sys.executable,
            "-c",
            "import socket,time\n"
            "a=socket.create_server(('10.231.0.2',4444));b=socket.create_server(('10.231.0.2',4445))\n"
            "time.sleep(60)\n",
        ],
    )
    try:
        wait_for(lambda: connects(namespaces, 4444), what="the listener")
        assert act(ActionKind.BLOCK, inside, "10.231.0.2", 4444).outcome is Outcome.DONE
        assert "10.231.0.2 . 4444" in table(namespaces)
        assert not connects(namespaces, 4444)
        assert connects(namespaces, 4445)
        assert act(ActionKind.UNBLOCK, inside, "10.231.0.2", 4444).outcome is Outcome.DONE
        assert connects(namespaces, 4444)
    finally:
        server.kill()
        server.wait()


def test_the_manager_and_allow_listed_networks_are_never_blocked(inside, namespaces):
    result = act(ActionKind.BLOCK, inside, "10.231.0.3")
    assert result.outcome is Outcome.REFUSED and "allow-listed" in result.message
    assert namespaces.reaches("10.231.0.3")
    assert act(ActionKind.BLOCK, inside, "not-an-ip").outcome is Outcome.REFUSED
    assert act(ActionKind.BLOCK, inside, "10.231.0.2", 70000).outcome is Outcome.REFUSED


def test_nft_failure_is_reported(context):
    broken = dataclasses.replace(
        context, settings=dataclasses.replace(context.settings, nft_command=("false",))
    )
    result = act(ActionKind.BLOCK, broken, "192.0.2.7")
    assert result.outcome is Outcome.FAILED and "inet provarmor" in result.message


def test_ipv6_addresses_go_to_their_own_set(inside, namespaces):
    assert act(ActionKind.BLOCK, inside, "2001:db8::7", 22).outcome is Outcome.DONE
    assert "2001:db8::7 . 22" in table(namespaces)
    assert socket.inet_pton(socket.AF_INET6, "2001:db8::7")
