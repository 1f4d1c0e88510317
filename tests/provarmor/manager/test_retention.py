"""Retention over a real manager (SQLite and PostgreSQL) fed the real lab capture; the
present is passed to each pass, so nothing sleeps."""

import json

import pytest

from provarmor.cli.app import app as cli
from provarmor.manager.retention import DAY_NS, Retention, before
from provarmor.manager.settings import RetentionSettings
from provarmor.manager.store import EventQuery, IncidentQuery, Page, StatusChange
from provarmor.model.codec import parse_json_event
from provarmor.model.errors import ConfigError

from .conftest import LAB_HOST, _lab_batches

OFF = {
    "events_days": 0,
    "alerts_days": 0,
    "incidents_days": 0,
    "graph_days": 0,
    "findings_max_bytes": 0,
    "graph_max_bytes": 0,
}


def _retention(manager, **settings):
    context = manager.client.app.state.context
    chosen = RetentionSettings(**{**OFF, "batch_rows": 200, **settings})
    return Retention(chosen, manager.store, context.ingestor, metrics=context.metrics)


def _upload(manager, batches, agent=None):
    agent_id, credential = agent or manager.enroll()
    for sequence, body in batches:
        answer = manager.upload(agent_id, credential, sequence=sequence, body=body)
        assert answer.status_code == 200, answer.text
    return agent_id, credential


def _times(lines):
    return sorted(parse_json_event(line).timestamp for line in lines)


def _events(manager):
    return manager.store.search_events(EventQuery(page=Page(limit=100_000)))


def _graph(manager):
    return manager.client.app.state.context.ingestor.host(LAB_HOST).store


def _consistent(store):
    """No edge to a missing node, no index entry to a missing edge."""
    db = store._db
    dangling = db.execute(
        "SELECT count(*) FROM edges e WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.key = e.src)"
        " OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.key = e.dst)"
    ).fetchone()[0]
    orphans = db.execute(
        "SELECT count(*) FROM event_index i WHERE NOT EXISTS "
        "(SELECT 1 FROM edges e WHERE e.id = i.edge_id)"
    ).fetchone()[0]
    return int(dangling), int(orphans)


def test_events_and_graph_older_than_the_age_go_and_uploads_go_on(manager, lab_lines):
    batches = _lab_batches(lab_lines)
    half = len(batches) // 2
    agent = _upload(manager, batches[:half])
    first_half = [line for _, body in batches[:half] for line in body.splitlines()]
    times = _times(first_half)
    middle = times[len(times) // 2]
    graph = _graph(manager)
    edges_before = graph.edge_count()

    report = _retention(manager, events_days=1, graph_days=1).run_once(middle + DAY_NS)

    left = _events(manager)
    assert report.findings.events == sum(1 for ts in times if ts < middle) > 0
    assert left and min(row.ts for row in left) >= middle
    assert report.graph.edges > 0
    assert graph.edge_count() == edges_before - report.graph.edges
    kept = report.findings.kept_nodes.get(LAB_HOST, frozenset())
    old = [edge for edge in graph.iter_edges() if edge.last_ts < middle]
    assert all(edge.src in kept and edge.dst in kept for edge in old)  # incidents' edges
    assert _consistent(graph) == (0, 0)
    # the builder forgot what was deleted: the rest of the capture is analysed and stored
    _upload(manager, batches[half:], agent=agent)
    assert _consistent(graph) == (0, 0)
    assert len(_events(manager)) == len(left) + sum(len(b.splitlines()) for _, b in batches[half:])


def test_a_second_pass_deletes_nothing_more(manager, lab_lines):
    _upload(manager, _lab_batches(lab_lines))
    now = _times(lab_lines)[-1] + 30 * DAY_NS
    retention = _retention(manager, events_days=7, graph_days=7, alerts_days=7)
    first = retention.run_once(now)
    again = retention.run_once(now)
    assert first.findings.events == len(lab_lines)
    assert set(again.deleted().values()) == {0}


def test_open_incidents_keep_their_alerts_and_graph_nodes_until_closed(manager, lab_lines):
    _upload(manager, _lab_batches(lab_lines))
    incidents = manager.store.incidents(IncidentQuery(page=Page(limit=100)))
    assert incidents, "the lab capture raises incidents"
    stories = [json.loads(row.json) for row in incidents]
    named = {alert for story in stories for alert in story["alert_ids"]}
    nodes = {node["id"] for story in stories for node in story["nodes"]}
    far = _times(lab_lines)[-1] + 365 * DAY_NS
    everything = {"events_days": 1, "alerts_days": 1, "incidents_days": 1, "graph_days": 1}

    open_pass = _retention(manager, **everything).run_once(far)

    assert open_pass.findings.incidents == 0
    kept_alerts = {row["id"] for row in manager.get("/alerts", limit=1000).json()}
    assert kept_alerts == named
    graph = _graph(manager)
    assert all(graph.node(node) is not None for node in nodes)
    assert _consistent(graph) == (0, 0)
    # an analyst resolves them: the next pass takes the incidents, their alerts, their nodes
    for row in incidents:
        manager.store.set_incident_status(
            StatusChange(incident_id=row.id, ts_ns=1, author="test", old=row.status, new="resolved")
        )
    closed_pass = _retention(manager, **everything).run_once(far)
    assert closed_pass.findings.incidents == len(incidents)
    assert closed_pass.findings.alerts == len(named)
    assert manager.get("/alerts", limit=1000).json() == []
    assert graph.edge_count() == 0
    assert graph.stats().nodes_by_kind == {}


def test_the_size_bound_deletes_the_oldest_events_and_gives_the_space_back(
    manager, lab_lines, tmp_path
):
    _upload(manager, _lab_batches(lab_lines))
    used = manager.store._db.used_bytes()
    bound = used // 2
    report = _retention(manager, findings_max_bytes=bound).run_once(_times(lab_lines)[-1])
    left = _events(manager)
    assert report.findings.bytes_before == used
    assert report.findings.events_for_size > 0
    assert len(left) == len(lab_lines) - report.findings.events_for_size
    # the first stored went first: what is left is the end of the upload
    last = [parse_json_event(line).event.id for line in lab_lines[len(lab_lines) - len(left) :]]
    assert {row.event_id for row in left} == set(last)
    # no growth since: the next pass deletes nothing more (on PostgreSQL the measure does
    # not fall after deletes, and must not make each pass delete the same share again)
    again = _retention(manager, findings_max_bytes=bound).run_once(_times(lab_lines)[-1])
    assert again.findings.events_for_size == 0
    if manager.kind == "sqlite":
        assert report.findings.reclaimed_bytes > 0
        assert report.findings.bytes_after < used
        assert manager.store._db.used_bytes() <= bound + 4096  # within a page


def test_metrics_and_the_stored_report_show_each_pass(manager, lab_lines, tmp_path):
    _upload(manager, _lab_batches(lab_lines))
    report = _retention(manager, events_days=1, graph_days=1).run_once(
        _times(lab_lines)[-1] + 2 * DAY_NS
    )
    text = manager.client.get("/metrics").text
    assert f'provarmor_retention_deleted_total{{kind="events"}} {float(len(lab_lines))}' in text
    assert (
        f'provarmor_retention_deleted_total{{kind="graph_edges"}} {float(report.graph.edges)}'
        in text
    )
    assert 'provarmor_retention_runs_total{result="ok"} 1.0' in text
    assert "provarmor_retention_last_run_seconds" in text
    stored = json.loads(manager.store.retention_record())
    assert stored["deleted"]["events"] == len(lab_lines)
    assert stored["graph"]["hosts"] == 1


def test_server_retention_prints_the_last_pass(make_manager, tmp_path, lab_lines):
    from typer.testing import CliRunner

    manager = make_manager(tmp_path)
    runner = CliRunner()
    database = str(tmp_path / "m.db")
    empty = runner.invoke(cli, ["server", "retention", "--db", database])
    assert empty.exit_code == 0, empty.output
    assert "no retention pass yet" in empty.output
    _upload(manager, _lab_batches(lab_lines))
    _retention(manager, events_days=1).run_once(_times(lab_lines)[-1] + 2 * DAY_NS)
    shown = runner.invoke(cli, ["server", "retention", "--db", database, "--json"])
    assert json.loads(shown.stdout)["deleted"]["events"] == len(lab_lines)
    table = runner.invoke(cli, ["server", "retention", "--db", database])
    assert "events" in table.output and f"{len(lab_lines):,}" in table.output


def test_batches_bound_how_long_an_upload_waits(manager, lab_lines):
    _upload(manager, _lab_batches(lab_lines))
    report = _retention(manager, events_days=1, batch_rows=100).run_once(
        _times(lab_lines)[-1] + 2 * DAY_NS
    )
    assert report.findings.events == len(lab_lines)
    assert 0 < report.findings.longest_hold_s < report.duration_s


def test_the_cutoff_of_a_bound_and_off():
    assert before(10 * DAY_NS, 3) == 7 * DAY_NS
    assert before(10 * DAY_NS, 0) == 0


@pytest.mark.parametrize("name", ["events_days", "graph_max_bytes", "batch_rows"])
def test_bad_settings_name_the_field(name):
    with pytest.raises(ConfigError, match="retention") as raised:
        RetentionSettings(**{name: -1})
    assert raised.value.location == f"retention.{name}"


def test_a_worker_prunes_only_the_graphs_of_its_hosts(manager, lab_lines):
    _upload(manager, _lab_batches(lab_lines))
    context = manager.client.app.state.context
    chosen = RetentionSettings(events_days=1, graph_days=1, incidents_days=1, alerts_days=1)
    worker = Retention(chosen, manager.store, context.ingestor, findings=False)
    report = worker.run_once(_times(lab_lines)[-1] + 2 * DAY_NS)
    assert report.graph.edges > 0
    assert len(_events(manager)) == len(lab_lines)  # the manager's to prune
    assert manager.store.retention_record() == ""
    assert _consistent(_graph(manager)) == (0, 0)
