import subprocess

import pytest

from provarmor.lab.naming import Names
from provarmor.lab.netns import LabNetwork, cleanup_network, lab_links, lab_namespaces

pytestmark = pytest.mark.privileged


def routes() -> str:
    return subprocess.run(["ip", "route"], capture_output=True, text=True).stdout


def test_namespaces_reach_each_other_and_teardown_leaves_nothing(lab_machine):
    assert lab_namespaces() == [] and lab_links() == []
    before = routes()
    with LabNetwork(roles=("a", "b"), names=Names(9)) as network:
        hosts = (*network.hosts.values(), network.victim)
        assert sorted(lab_namespaces()) == sorted(h.namespace for h in hosts)
        assert network.address("victim") == "10.213.0.2"
        ping = subprocess.run(
            network.command("a", ["ping", "-c1", "-W2", network.address("b")]), capture_output=True
        )
        assert ping.returncode == 0
        from_victim = ["ping", "-c1", "-W2", network.address("b")]
        assert subprocess.run(network.command("victim", from_victim)).returncode == 0
        outside = subprocess.run(
            network.command("a", ["ping", "-c1", "-W1", "192.0.2.1"]),
            capture_output=True,
            text=True,
        )
        assert outside.returncode != 0, "a lab namespace must have no route out"
        assert "blackhole 10.213.0.0/24" in routes()
        guard = network.containment()
        assert guard.is_allowed_host(network.address("a")) and guard.is_allowed_host("b.lab")
        assert not guard.is_allowed_host("10.213.0.254")
    assert lab_namespaces() == [] and lab_links() == []
    assert routes() == before


def test_cleanup_removes_what_a_crashed_run_left(lab_machine):
    network = LabNetwork(roles=("a",), names=Names(10))
    network.create()
    network._created = False  # simulate a crash: nobody will call destroy
    assert lab_namespaces() and lab_links()
    removed = cleanup_network()
    assert any(line.startswith("netns provarmor-lab-") for line in removed)
    assert lab_namespaces() == [] and lab_links() == []
    assert "blackhole" not in routes()
