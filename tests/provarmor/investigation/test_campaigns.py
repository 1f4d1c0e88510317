from __future__ import annotations

from collections.abc import Sequence

import msgspec

from provarmor.graph.builder import GraphBuilder
from provarmor.graph.store import MemoryGraphStore
from provarmor.investigation.campaigns import CampaignBuilder
from provarmor.investigation.hubs import HubIndex
from provarmor.investigation.settings import InvestigationSettings
from provarmor.model.actions import Action
from provarmor.model.alert import Alert
from provarmor.model.event import Endpoint, Event
from provarmor.model.ids import file_node_id
from provarmor.testing.factories import entity, make_event


def build_store(events: Sequence[Event]) -> MemoryGraphStore:
    builder = GraphBuilder()
    store = MemoryGraphStore()
    for event in events:
        builder.add(event)
    store.apply(builder.drain(full=True))
    return store


def signal(pid: int, ts: int, *, level: str = "high", rule: str = "r1") -> Alert:
    return Alert(
        id=f"{rule}-{pid}-{ts}",
        rule_id=rule,
        rule_title=f"rule {rule}",
        level=level,
        host_id="test-host",
        process_entity_ids=(entity(pid),),
        first_timestamp=ts,
        last_timestamp=ts,
    )


def campaigns_for(
    store: MemoryGraphStore, signals: Sequence[Alert], **overrides: object
) -> CampaignBuilder:
    settings = InvestigationSettings(**overrides)  # type: ignore[arg-type]
    builder = CampaignBuilder(store, settings=settings, hubs=HubIndex(store, fanout=8))
    for item in signals:
        builder.add(item)
    return builder


def fork(parent: int, child: int, ts: int, exe: str = "/usr/bin/bash") -> Event:
    return make_event(Action.FORK, pid=child, ppid=parent, ts=ts, exe=exe)


def test_terminals_linked_through_a_written_file_merge() -> None:
    store = build_store(
        [
            make_event(Action.EXEC, pid=10, ppid=9, ts=1, exe="/usr/bin/curl"),
            make_event(Action.WRITE, pid=10, ts=5, path="/tmp/.x/payload"),
            make_event(Action.EXEC, pid=20, ppid=19, ts=6, exe="/usr/bin/python3"),
            make_event(Action.READ, pid=20, ts=7, path="/tmp/.x/payload"),
        ]
    )
    builder = campaigns_for(store, [signal(10, 5), signal(20, 8, rule="r2")])
    assert len(builder.campaigns) == 1
    campaign = next(iter(builder.campaigns.values()))
    assert set(campaign.terminals) == {entity(10), entity(20)}
    assert file_node_id("test-host", "/tmp/.x/payload") in campaign.tree
    assert builder.stats.joins == 1


def test_time_reversed_path_does_not_merge() -> None:
    store = build_store(
        [
            make_event(Action.EXEC, pid=20, ppid=19, ts=1, exe="/usr/bin/python3"),
            make_event(Action.READ, pid=20, ts=3, path="/tmp/.x/payload"),
            make_event(Action.EXEC, pid=10, ppid=9, ts=4, exe="/usr/bin/curl"),
            make_event(Action.WRITE, pid=10, ts=5, path="/tmp/.x/payload"),
        ]
    )
    # 20 read the file before 10 wrote it: no information flowed from 10 to 20.
    builder = campaigns_for(store, [signal(10, 5), signal(20, 6, rule="r2")])
    assert len(builder.campaigns) == 2


def test_common_non_hub_ancestor_joins_later_terminal() -> None:
    store = build_store(
        [
            make_event(Action.EXEC, pid=10, ppid=1, ts=1, exe="/bin/sh"),
            fork(10, 11, 2),
            fork(10, 12, 3),
        ]
    )
    builder = campaigns_for(store, [signal(11, 2), signal(12, 4, rule="r2")])
    assert len(builder.campaigns) == 1
    assert entity(10) in next(iter(builder.campaigns.values())).tree


def test_alerts_under_a_hub_stay_separate() -> None:
    children = [fork(1, 100 + i, 2 + i) for i in range(10)]
    store = build_store([make_event(Action.EXEC, pid=1, ts=1, exe="/sbin/init"), *children])
    builder = campaigns_for(store, [signal(100, 20), signal(105, 21, rule="r2")])
    assert len(builder.campaigns) == 2
    # a fan-out hub that is not pid 1 behaves the same
    children = [fork(50, 200 + i, 2 + i) for i in range(10)]
    store = build_store(
        [make_event(Action.EXEC, pid=50, ppid=1, ts=1, exe="/usr/sbin/cron"), *children]
    )
    builder = campaigns_for(store, [signal(200, 20), signal(209, 21, rule="r2")])
    assert len(builder.campaigns) == 2


def _server_with_two_shells() -> MemoryGraphStore:
    return build_store(
        [
            make_event(Action.EXEC, pid=30, ppid=1, ts=1, exe="/usr/bin/python3"),
            make_event(Action.ACCEPT, pid=30, ts=2, ip="10.0.0.5", port=40000),
            fork(30, 31, 3, exe="/bin/sh"),
            make_event(Action.ACCEPT, pid=30, ts=4, ip="10.0.0.5", port=40001),
            fork(30, 32, 5, exe="/bin/sh"),
        ]
    )


def test_children_of_one_network_server_join_within_the_window() -> None:
    store = _server_with_two_shells()
    builder = campaigns_for(store, [signal(31, 3), signal(32, 6, rule="r2")])
    assert len(builder.campaigns) == 1
    assert builder.stats.server_sibling_merges == 1
    off = campaigns_for(
        _server_with_two_shells(),
        [signal(31, 3), signal(32, 6, rule="r2")],
        server_siblings_hours=0.0,
    )
    assert len(off.campaigns) == 2


def test_search_bounds_are_honoured_and_counted() -> None:
    chain = [make_event(Action.EXEC, pid=1000, ppid=1, ts=1, exe="/bin/sh")]
    chain += [fork(1000 + i, 1001 + i, 2 + i) for i in range(30)]
    store = build_store(chain)
    builder = campaigns_for(store, [signal(1000, 2), signal(1030, 40, rule="r2")], max_visited=5)
    assert builder.stats.searches == 2
    assert builder.stats.searches_truncated == 1
    assert len(builder.campaigns) == 2  # the first terminal is 30 hops away: out of reach
    near = campaigns_for(build_store(chain), [signal(1000, 2), signal(1030, 40, rule="r2")])
    assert near.stats.searches_truncated == 0
    assert len(near.campaigns) == 2  # 30 hops > max_hops (12)
    wide = campaigns_for(
        build_store(chain), [signal(1000, 2), signal(1030, 40, rule="r2")], max_hops=40
    )
    assert len(wide.campaigns) == 1


def test_campaigns_past_the_limit_are_evicted_and_counted() -> None:
    events = [make_event(Action.EXEC, pid=p, ppid=1, ts=p, exe="/bin/sh") for p in range(10, 16)]
    store = build_store(events)
    builder = campaigns_for(
        store, [signal(p, p, rule=f"r{p}") for p in range(10, 16)], max_campaigns=3
    )
    assert len(builder.campaigns) <= 3
    assert builder.stats.campaigns_evicted == 3


def _with_source(event: Event, ip: str, port: int) -> Event:
    return msgspec.structs.replace(event, source=Endpoint(ip=ip, port=port))


def test_sessions_of_a_process_running_before_observation_stay_separate() -> None:
    # pid 40 was running before the sensor: no parent, no fork or exec seen. Its children
    # are separate sessions, like those of a job runner.
    store = build_store(
        [
            make_event(Action.OPEN, pid=40, ts=1, exe="/usr/bin/python3.11", path="/srv/job"),
            fork(40, 41, 2, exe="/bin/sh"),
            fork(40, 42, 3, exe="/bin/sh"),
        ]
    )
    builder = campaigns_for(store, [signal(41, 2), signal(42, 4, rule="r2")])
    assert len(builder.campaigns) == 2
    # the same shape under a process whose start was seen is one campaign
    store = build_store(
        [
            make_event(Action.EXEC, pid=40, ppid=39, ts=1, exe="/usr/bin/python3.11"),
            fork(40, 41, 2, exe="/bin/sh"),
            fork(40, 42, 3, exe="/bin/sh"),
        ]
    )
    builder = campaigns_for(store, [signal(41, 2), signal(42, 4, rule="r2")])
    assert len(builder.campaigns) == 1


def test_account_database_written_and_read_does_not_join() -> None:
    store = build_store(
        [
            make_event(Action.EXEC, pid=10, ppid=9, ts=1, exe="/usr/sbin/useradd"),
            make_event(Action.WRITE, pid=10, ts=2, path="/etc/group"),
            make_event(Action.EXEC, pid=20, ppid=19, ts=3, exe="/usr/bin/id"),
            make_event(Action.OPEN, pid=20, ts=4, path="/etc/group"),
        ]
    )
    builder = campaigns_for(store, [signal(10, 2), signal(20, 5, rule="r2")])
    assert len(builder.campaigns) == 2


def _login(*, client_end: bool) -> MemoryGraphStore:
    connect = make_event(Action.CONNECT, pid=60, ts=3, exe="/usr/bin/ssh", ip="10.0.0.2", port=22)
    if client_end:
        connect = _with_source(connect, "10.0.0.1", 40388)
    return build_store(
        [
            make_event(Action.EXEC, pid=60, ppid=59, ts=1, exe="/usr/bin/ssh"),
            make_event(Action.EXEC, pid=70, ppid=1, ts=1, exe="/usr/sbin/sshd"),
            make_event(Action.ACCEPT, pid=70, ts=2, ip="10.0.0.9", port=50000),
            fork(70, 71, 2, exe="/usr/sbin/sshd"),
            connect,
            make_event(Action.ACCEPT, pid=70, ts=4, ip="10.0.0.1", port=40388),
            fork(70, 72, 5, exe="/usr/sbin/sshd"),
            fork(72, 73, 6, exe="/bin/bash"),
        ]
    )


def test_login_on_another_host_joins_the_client_through_the_connection() -> None:
    builder = campaigns_for(_login(client_end=True), [signal(60, 3), signal(73, 7, rule="r2")])
    assert len(builder.campaigns) == 1
    campaign = next(iter(builder.campaigns.values()))
    assert "sock:10.0.0.1:40388" in campaign.tree
    # the session of the server's other client (pid 71) is not taken in
    assert builder.campaign_of(entity(71)) is None
    # without the client's end of the connection the two stay apart
    apart = campaigns_for(_login(client_end=False), [signal(60, 3), signal(73, 7, rule="r2")])
    assert len(apart.campaigns) == 2
