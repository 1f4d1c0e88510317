from __future__ import annotations

from collections.abc import Sequence

from provarmor.graph.builder import GraphBuilder
from provarmor.graph.store import MemoryGraphStore
from provarmor.investigation.hubs import HubIndex
from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.model.ids import file_node_id
from provarmor.testing.factories import entity, make_event


def build_store(events: Sequence[Event]) -> MemoryGraphStore:
    builder = GraphBuilder()
    store = MemoryGraphStore()
    for event in events:
        builder.add(event)
    store.apply(builder.drain(full=True))
    return store


def fork(parent: int, child: int, ts: int) -> Event:
    return make_event(Action.FORK, pid=child, ppid=parent, ts=ts, exe="/bin/sh")


def hub(store: MemoryGraphStore, node_id: str) -> bool:
    node = store.node(node_id)
    assert node is not None
    return HubIndex(store, fanout=24).is_hub(node)


def test_a_process_running_before_observation_is_a_hub_from_two_children() -> None:
    unseen = [make_event(Action.OPEN, pid=40, ts=1, path="/srv/jobs"), fork(40, 41, 2)]
    assert not hub(build_store(unseen), entity(40))
    store = build_store([*unseen, fork(40, 42, 3)])
    assert hub(store, entity(40))
    # its children were seen starting: they are not
    assert not hub(store, entity(41))
    seen = [make_event(Action.EXEC, pid=40, ppid=39, ts=1), fork(40, 41, 2), fork(40, 42, 3)]
    assert not hub(build_store(seen), entity(40))


def test_account_databases_and_history_files_are_hubs_other_files_are_not() -> None:
    store = build_store(
        [
            make_event(Action.WRITE, pid=10, ts=1, path="/etc/group"),
            make_event(Action.WRITE, pid=10, ts=2, path="/home/u/.bash_history"),
            make_event(Action.WRITE, pid=10, ts=3, path="/tmp/.x/payload"),
        ]
    )
    assert hub(store, file_node_id("test-host", "/etc/group"))
    assert hub(store, file_node_id("test-host", "/home/u/.bash_history"))
    assert not hub(store, file_node_id("test-host", "/tmp/.x/payload"))
