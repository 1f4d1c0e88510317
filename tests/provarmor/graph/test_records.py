import msgspec

from provarmor.graph.records import Edge, Node, NodeKind


def test_records_serialise_compactly():
    node = Node(id="p", kind=NodeKind.PROCESS, host="h", first_ts=1, last_ts=2, pid=5)
    assert msgspec.to_builtins(node) == {
        "id": "p",
        "kind": "process",
        "host": "h",
        "first_ts": 1,
        "last_ts": 2,
        "pid": 5,
    }
    edge = Edge(id=1, src="a", dst="b", action="read", first_ts=1, last_ts=1)
    assert msgspec.json.decode(msgspec.json.encode(edge), type=Edge) == edge
