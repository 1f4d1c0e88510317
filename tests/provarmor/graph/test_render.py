import json

from provarmor.graph.builder import GraphBuilder
from provarmor.graph.render import format_ts, to_dot, to_json, to_tree
from provarmor.graph.store import MemoryGraphStore
from provarmor.graph.trace import Direction, trace
from provarmor.model.actions import Action
from provarmor.testing.factories import entity, make_event


def result():
    builder = GraphBuilder()
    builder.add(
        make_event(Action.EXEC, pid=2, ppid=1, exe='/tmp/a b"c', ts=1_700_000_000_000_000_000)
    )
    builder.add(
        make_event(Action.CONNECT, pid=2, ip="127.0.0.1", port=80, ts=1_700_000_000_100_000_000)
    )
    store = MemoryGraphStore()
    store.apply(builder.drain())
    return trace(store, "sock:127.0.0.1:80", direction=Direction.BACKWARD)


def test_tree_lists_the_chain_from_the_start():
    lines = to_tree(result())
    assert lines[0] == "socket: 127.0.0.1:80"
    assert lines[1].startswith(
        '  <- connect @ 2023-11-14T22:13:20.100000+00:00 process: /tmp/a b"c'
    )
    assert any("<- fork" in line for line in lines)


def test_dot_escapes_labels_and_marks_the_start():
    dot = to_dot(result())
    assert dot.startswith('digraph "provarmor backward" {')
    assert '\\"c' in dot
    assert "color=red" in dot
    assert f'"{entity(2)}" -> "sock:127.0.0.1:80"' in dot


def test_json_is_serialisable():
    data = to_json(result())
    assert json.loads(json.dumps(data))["direction"] == "backward"
    assert len(data["edges"]) == 2  # type: ignore[arg-type]  (the exec source is a leaf file)


def test_format_ts():
    assert format_ts(0) == "1970-01-01T00:00:00.000000+00:00"
