import pytest

from provarmor.model.actions import Action
from provarmor.model.codec import encode_ndjson
from provarmor.model.errors import ConfigError
from provarmor.pipeline.ingest import build_graph, ingest_file
from provarmor.storage.sqlite_graph import SqliteGraphStore
from provarmor.testing.factories import make_event


def test_ingest_counts_and_is_idempotent_per_content(tmp_path):
    source = tmp_path / "events.ndjson"
    source.write_bytes(
        encode_ndjson([make_event(Action.WRITE, path=f"/f{i % 3}", ts=i) for i in range(10)])
        + b"not json\n"
    )
    store = SqliteGraphStore(tmp_path / "g.db")
    seen = []
    first = ingest_file(source, format="ndjson", store=store, progress=seen.append)
    assert (first.report.events, first.report.rejected) == (10, 1)
    assert sum(seen) == 10
    assert first.counters.events == 10
    again = ingest_file(source, format="ndjson", store=store)
    assert again.skipped_as_duplicate == str(source)
    assert store.stats().edges_by_action == {"write": 10}
    store.close()


def test_unknown_format_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown format 'pcap'"):
        ingest_file(tmp_path, format="pcap", store=SqliteGraphStore(tmp_path / "g.db"))


def test_build_graph_flushes_in_batches(tmp_path):
    store = SqliteGraphStore(tmp_path / "g.db")
    counters = build_graph(
        (make_event(Action.WRITE, path=f"/f{i}", ts=i) for i in range(25)), store, batch=10
    )
    assert counters.edges_created == 25
    assert store.edge_count() == 25
    store.close()
