import ipaddress

from provarmor.lab.containment import LAB_SUBNET
from provarmor.lab.context import ROLES, LabContext


def test_building_a_context_changes_nothing_on_the_machine():
    ctx = LabContext.from_seed(11)
    assert not ctx.run_dir.exists()


def test_one_seed_one_context_and_two_seeds_differ_everywhere():
    first, again, second = (LabContext.from_seed(s) for s in (1, 1, 2))
    assert (first.web, first.c2, first.ops_user) == (again.web, again.c2, again.ops_user)
    assert first.web.user != second.web.user and first.ops_user != second.ops_user
    assert first.web.port != second.web.port and first.run_id != second.run_id
    assert first.c2.beacon_path != second.c2.beacon_path
    assert first.address("c2") != second.address("c2")


def test_every_role_has_a_distinct_lab_address():
    ctx = LabContext.from_seed(3)
    addresses = [ctx.address(role) for role in ROLES]
    assert len(set(addresses)) == len(ROLES)
    assert all(ipaddress.ip_address(a) in LAB_SUBNET for a in addresses)
    assert ctx.c2.url.startswith(f"http://{ctx.address('c2')}:")
    assert ctx.web.url == f"http://127.0.0.1:{ctx.web.port}"
