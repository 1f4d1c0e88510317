"""The allow-list on real processes and addresses."""

import dataclasses
import os
import shutil

import pytest

from provarmor.response.allowlist import network_refusal, process_refusal, user_refusal
from provarmor.sources.procfs import read_process

from .conftest import children_of, move_into, wait_for

pytestmark = pytest.mark.privileged


def test_processes(context, spawn):
    init = read_process(1, clock=context.clock)
    me = read_process(os.getpid(), clock=context.clock)
    assert init is not None and me is not None
    assert process_refusal(init, context, explicit=True) == "pid 1 (init)"
    assert process_refusal(me, context, explicit=True) == "the ProvArmor agent itself"
    own = dataclasses.replace(me, pid=99999999, own=True)
    assert "cgroup provarmor.own" in (process_refusal(own, context, explicit=True) or "")
    other = read_process(spawn("sleep", "300").pid, clock=context.clock)
    assert other is not None and process_refusal(other, context, explicit=False) is None


def test_a_package_transaction_is_left_alone_down_to_its_maintainer_scripts(
    context, spawn, tmp_path
):
    """A process below the package manager (dpkg-preconfigure, a maintainer script) is the
    transaction's own: refused unless a person names it; the same program elsewhere is not."""
    manager = tmp_path / "dpkg"  # a real shell that runs as the program dpkg
    shutil.copy("/bin/sh", manager)
    transaction = spawn(str(manager), "-c", "sh -c 'sleep 300; :' & wait", children=1)
    (script,) = children_of(transaction.pid)
    wait_for(lambda: len(children_of(script)) == 1, what="the maintainer script's child")
    (grandchild,) = children_of(script)
    for pid in (script, grandchild):
        info = read_process(pid, clock=context.clock)
        assert info is not None
        refusal = process_refusal(info, context, explicit=False) or ""
        assert refusal == (
            f"inside a package manager transaction (dpkg, pid {transaction.pid}); "
            "name it explicitly to act on it"
        )
        assert process_refusal(info, context, explicit=True) is None
    elsewhere = read_process(spawn("sh", "-c", "sleep 300; :", children=1).pid, clock=context.clock)
    assert elsewhere is not None and process_refusal(elsewhere, context, explicit=False) is None


def test_a_process_scope_leaves_every_process_outside_it_alone(context, spawn, scope_group):
    inside, outside = spawn("sleep", "300"), spawn("sleep", "300")
    move_into(scope_group, inside.pid)
    scoped = dataclasses.replace(
        context,
        settings=dataclasses.replace(context.settings, process_scope=f"/{scope_group.name}"),
    )
    inner = read_process(inside.pid, clock=context.clock)
    outer = read_process(outside.pid, clock=context.clock)
    assert inner is not None and outer is not None
    assert inner.cgroup == f"/{scope_group.name}"
    assert process_refusal(inner, scoped, explicit=False) is None
    refusal = process_refusal(outer, scoped, explicit=True) or ""
    assert refusal.startswith(f"outside the response scope (cgroup {outer.cgroup}")
    assert process_refusal(outer, context, explicit=False) is None  # no scope: the whole host


def test_networks(context):
    settings = dataclasses.replace(
        context.settings,
        manager_addresses=("192.0.2.10",),
        bus_addresses=("2001:db8::/64",),
        allow_networks=("198.51.100.0/24",),
    )
    inside = dataclasses.replace(context, settings=settings)
    assert "allow-listed" in (network_refusal("192.0.2.10", inside) or "")
    assert "allow-listed" in (network_refusal("2001:db8::5", inside) or "")
    assert "allow-listed" in (network_refusal("198.51.100.77", inside) or "")
    assert network_refusal("203.0.113.5", inside) is None
    assert "loopback" in (network_refusal("127.0.0.1", inside) or "")
    assert "loopback" in (network_refusal("::1", inside) or "")
    assert "not an IP" in (network_refusal("example.org", inside) or "")


def test_users(context):
    assert user_refusal("toor", 0, context) == "toor has uid 0"
    assert user_refusal("root", 5, context) == "root is a protected account"
    assert user_refusal("bob", 1000, context) is None
