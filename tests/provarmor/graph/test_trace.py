import pytest

from provarmor.graph.builder import GraphBuilder
from provarmor.graph.noise import NO_FILTER
from provarmor.graph.store import MemoryGraphStore
from provarmor.graph.trace import Direction, TraceLimits, trace, trace_from_event
from provarmor.model.actions import Action
from provarmor.testing.factories import entity, make_event


def graph(events):
    builder = GraphBuilder()
    store = MemoryGraphStore()
    for event in events:
        builder.add(event)
    store.apply(builder.drain())
    return store


@pytest.fixture
def attack():
    """shell(1) forks curl(2) that downloads /tmp/p; chmod(3); p(4) runs and connects out.
    An unrelated process (9) writes a log and reads /tmp/p only AFTER the connect."""
    return graph(
        [
            make_event(Action.FORK, pid=2, ppid=1, ts=10, exe="/usr/bin/bash"),
            make_event(Action.EXEC, pid=2, ppid=1, ts=11, exe="/usr/bin/curl"),
            make_event(Action.RECV, pid=2, ts=12, exe="/usr/bin/curl", ip="127.0.0.1", port=8000),
            make_event(Action.CREATE, pid=2, ts=13, exe="/usr/bin/curl", path="/tmp/p"),
            make_event(Action.READ, pid=2, ts=13, exe="/usr/bin/curl", path="/usr/lib/libc.so.6"),
            make_event(Action.FORK, pid=3, ppid=1, ts=20),
            make_event(Action.EXEC, pid=3, ppid=1, ts=21, exe="/usr/bin/chmod"),
            make_event(Action.CHMOD, pid=3, ts=22, exe="/usr/bin/chmod", path="/tmp/p"),
            make_event(Action.FORK, pid=4, ppid=1, ts=30),
            make_event(Action.EXEC, pid=4, ppid=1, ts=31, exe="/tmp/p"),
            make_event(
                Action.CONNECT,
                pid=4,
                ts=32,
                exe="/tmp/p",
                ip="127.0.0.1",
                port=9001,
                event_id="c2",
            ),
            make_event(Action.WRITE, pid=9, ts=5, exe="/usr/sbin/rsyslogd", path="/var/log/x"),
            make_event(Action.READ, pid=9, ts=40, exe="/usr/sbin/rsyslogd", path="/tmp/p"),
        ]
    )


def test_backward_from_connect_event_is_exactly_the_chain(attack):
    result = trace_from_event(attack, "c2", direction=Direction.BACKWARD)
    assert result is not None
    assert set(result.nodes) == {
        "sock:127.0.0.1:9001",
        entity(4),
        "file:test-host:/tmp/p",
        entity(2),
        entity(3),
        entity(1),
        "sock:127.0.0.1:8000",
    }
    actions = sorted(e.action for e in result.edges.values())
    assert actions == sorted(["connect", "exec", "create", "chmod", "recv", "fork", "fork", "fork"])
    assert result.hidden["leaf_files"] == 2  # /usr/bin/curl and /usr/bin/chmod, never written
    assert result.hidden["noise"] == 1  # libc


def test_backward_respects_time(attack):
    # Tracing /tmp/p as of before the chmod must not include the chmod process.
    result = trace(attack, "file:test-host:/tmp/p", direction=Direction.BACKWARD, at=15)
    assert entity(3) not in result.nodes
    assert entity(2) in result.nodes


def test_forward_impact_excludes_earlier_edges(attack):
    result = trace(attack, entity(2), direction=Direction.FORWARD)
    assert "file:test-host:/tmp/p" in result.nodes
    assert entity(4) in result.nodes  # executed the downloaded file
    assert entity(9) in result.nodes  # read it later
    assert "file:test-host:/var/log/x" not in result.nodes  # written before: no causal link


def test_keep_leaves_and_no_filter_show_everything(attack):
    limits = TraceLimits(keep_leaves=True)
    result = trace(attack, entity(2), direction=Direction.BACKWARD, limits=limits, noise=NO_FILTER)
    assert "file:test-host:/usr/lib/libc.so.6" in result.nodes
    assert "file:test-host:/usr/bin/curl" in result.nodes


def test_node_limit_truncates_and_says_so(attack):
    result = trace_from_event(
        attack, "c2", direction=Direction.BACKWARD, limits=TraceLimits(max_nodes=3)
    )
    assert result is not None
    assert len(result.nodes) == 3
    assert "node limit" in result.truncated


def test_unknown_start_gives_empty_result(attack):
    assert trace(attack, "nope", direction=Direction.BACKWARD).nodes == {}
    assert trace_from_event(attack, "nope", direction=Direction.BACKWARD) is None


def test_cycles_terminate():
    store = graph(
        [
            make_event(Action.WRITE, pid=1, path="/a", ts=1),
            make_event(Action.READ, pid=2, path="/a", ts=2),
            make_event(Action.WRITE, pid=2, path="/b", ts=3),
            make_event(Action.READ, pid=1, path="/b", ts=4),
            make_event(Action.WRITE, pid=1, path="/a", ts=5),
        ]
    )
    result = trace(store, "file:test-host:/a", direction=Direction.BACKWARD)
    assert {entity(1), entity(2)} <= set(result.nodes)


def test_backward_from_recreated_file_skips_the_earlier_version():
    store = graph(
        [
            make_event(Action.WRITE, pid=5, path="/tmp/p", ts=1),
            make_event(Action.DELETE, pid=6, path="/tmp/p", ts=2),
            make_event(Action.CREATE, pid=7, path="/tmp/p", ts=3),
        ]
    )
    result = trace(store, "file:test-host:/tmp/p", direction=Direction.BACKWARD)
    assert entity(7) in result.nodes
    assert entity(5) not in result.nodes
    assert entity(6) not in result.nodes
    assert result.hidden["earlier_file_versions"] == 2
