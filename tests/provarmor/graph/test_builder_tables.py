"""The builder's table entries as stored in a checkpoint: msgpack, typed on the way back."""

import msgspec

from provarmor.graph.builder_tables import EdgeEntry, NodeEntry, TablesChunk
from provarmor.graph.records import Edge, Node, NodeKind


def test_a_chunk_decodes_to_the_records_it_was_made_of():
    node = Node(id="p1", kind=NodeKind.PROCESS, host="h", first_ts=1, last_ts=5, pid=7)
    edge = Edge(id=3, src="p1", dst="file:h:/etc/passwd", action="read", first_ts=2, last_ts=4)
    chunk = TablesChunk(
        nodes=[
            NodeEntry("p1", True, node, 9, None, 8, True),
            NodeEntry("gone", False, None, None, None, None, False),
        ],
        edges=[
            EdgeEntry(("p1", "file:h:/etc/passwd", "read"), False, edge, 8),
            EdgeEntry(("a", "b", "write"), False, None, None),
        ],
    )
    data = msgspec.msgpack.encode(chunk)
    decoded = msgspec.msgpack.Decoder(TablesChunk).decode(data)
    assert decoded == chunk
    assert decoded.nodes[0].node is not None and decoded.nodes[0].node.kind is NodeKind.PROCESS
    assert data.count(b"first_ts") == 2, "records are written with their field names"
