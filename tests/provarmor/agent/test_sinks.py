import json

from provarmor.agent.sinks import GraphSink, NdjsonSink, decode_position, encode_position
from provarmor.agent.spool import SpoolPosition
from provarmor.model.actions import Action
from provarmor.testing.factories import make_event

EVENTS = [make_event(Action.WRITE, path=f"/srv/{i}", ts=i, event_id=f"e{i}") for i in range(4)]


def test_position_round_trip():
    position = SpoolPosition(sequence=5, segment=2, offset=99)
    assert decode_position(encode_position(position), location="x") == position


def test_ndjson_sink_cuts_uncommitted_tail_on_restart(tmp_path):
    path = tmp_path / "out.ndjson"
    sink = NdjsonSink(path)
    sink.write(EVENTS[:2], SpoolPosition(sequence=2))
    sink.close()
    with path.open("ab") as handle:  # a write the agent was killed before committing
        handle.write(b'{"partial": tru')
    sink = NdjsonSink(path)
    assert sink.committed() == SpoolPosition(sequence=2)
    sink.write(EVENTS[2:], SpoolPosition(sequence=4))
    sink.close()
    ids = [json.loads(line)["event"]["id"] for line in path.read_text().splitlines()]
    assert ids == ["e0", "e1", "e2", "e3"]


def test_graph_sink_commits_position_with_the_data(tmp_path):
    sink = GraphSink(tmp_path / "g.db")
    assert sink.committed() is None
    sink.write(EVENTS, SpoolPosition(sequence=4, segment=0, offset=10))
    sink.close()
    again = GraphSink(tmp_path / "g.db")
    assert again.committed() == SpoolPosition(sequence=4, segment=0, offset=10)
    assert again.store.stats().edges_by_action == {"write": 4}
    again.close()
