"""SqlFindingsStore over both dialects: tokens, agents, batches committed once, searches,
incidents whose analyst status survives new versions, notes, changes and the timeline,
and the refusal of a newer format."""

import dataclasses
import gzip
import json
import sqlite3
from pathlib import Path

import pytest

from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.sql_store import FORMAT_VERSION
from provarmor.manager.store import (
    AgentRecord,
    AlertQuery,
    AlertRow,
    BatchCommit,
    Checkpoint,
    EventQuery,
    EventRow,
    IncidentQuery,
    IncidentRow,
    Note,
    Page,
    StatusChange,
    TokenRecord,
)
from provarmor.model.errors import StorageError

LAB = Path(__file__).parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"
MINUTE = 60 * 10**9


def _lab_rows(count: int) -> list[EventRow]:
    """Search rows of the first ``count`` events of the real lab capture."""
    rows = []
    for line in gzip.decompress(LAB.read_bytes()).splitlines()[:count]:
        event = json.loads(line)
        process = event.get("process", {})
        rows.append(
            EventRow(
                host=event["host"]["id"],
                ts=event["@timestamp"],
                event_id=event["event"]["id"],
                action=event["event"]["action"],
                process=process.get("entity_id", ""),
                executable=process.get("executable", ""),
                command_line=process.get("command_line", ""),
                file_path=event.get("file", {}).get("path", ""),
                remote=event.get("destination", {}).get("ip", ""),
                json=line.decode(),
            )
        )
    return rows


def _token(token_id: str, role: Role, **fields) -> TokenRecord:
    return TokenRecord(id=token_id, role=role, salt="00", digest="ab", created_ns=1, **fields)


def _agent(store, agent_id: str = "a1", host: str = "h1") -> None:
    store.add_agent(
        AgentRecord(id=agent_id, host_id=host, hostname=f"{host}-name", enrolled_ns=5),
        credential=_token(agent_id, Role.AGENT),
    )


def _incident(version: int, *, status: str = "new", first_ts: int = 3 * MINUTE) -> IncidentRow:
    return IncidentRow(
        id="h1:inc-c1",
        host="h1",
        engine_id="inc-c1",
        severity="high" if version > 1 else "medium",
        score=float(version),
        status=status,
        title=f"story v{version}",
        first_ts=first_ts,
        last_ts=first_ts + version,
        updated_ts=first_ts + version,
        version=version,
        json="{}",
    )


def _alert(alert_id: str, *, level: str, first_ts: int) -> AlertRow:
    return AlertRow(
        host="h1",
        id=alert_id,
        rule_id="r1",
        title="t",
        level=level,
        detector="sigma",
        first_ts=first_ts,
        last_ts=first_ts,
        score=1.0,
        json="{}",
    )


def test_tokens_and_enrolment_consumption(store):
    assert store.token("nope") is None
    assert store.has_admin() is False
    store.add_token(_token("adm", Role.ADMIN, label="first"))
    store.add_token(_token("enr", Role.ENROLL, expires_ns=100))
    assert store.has_admin() is True
    assert store.token("adm") == _token("adm", Role.ADMIN, label="first")
    assert store.consume_enrollment("enr", now_ns=100) is False  # expired at 100
    assert store.consume_enrollment("enr", now_ns=99) is True
    assert store.consume_enrollment("enr", now_ns=99) is False  # single use
    assert store.token("enr").used_ns == 99
    assert store.consume_enrollment("adm", now_ns=1) is False  # not an enrolment token


def test_agents_status_and_hosts(store):
    _agent(store, "a1", "h1")
    _agent(store, "a2", "h1")
    _agent(store, "a3", "h2")
    assert store.token("a1").role is Role.AGENT
    store.record_status("a2", status_json='{"sensor": "ebpf"}', now_ns=77)
    agent = store.agent("a2")
    assert (agent.status_json, agent.status_ns, agent.last_seen_ns) == (
        '{"sensor": "ebpf"}',
        77,
        77,
    )
    assert store.agent("zz") is None
    hosts = {host.id: host for host in store.hosts()}
    assert sorted(hosts) == ["h1", "h2"]
    assert [a.id for a in hosts["h1"].agents] == ["a1", "a2"]
    assert hosts["h1"].last_seen_ns == 77
    assert (hosts["h1"].events, hosts["h1"].alerts, hosts["h1"].incidents) == (0, 0, 0)


def test_batch_is_stored_once_and_searchable(store):
    rows = _lab_rows(120)
    host = rows[0].host
    _agent(store, "a1", host)
    assert store.commit_batch(BatchCommit(agent_id="a1", sequence=120, received_ns=9, events=rows))
    again = BatchCommit(agent_id="a1", sequence=120, received_ns=10, events=rows)
    assert store.commit_batch(again) is False
    assert store.commit_batch(BatchCommit(agent_id="a1", sequence=50, received_ns=11)) is False
    assert store.agent("a1").acked_sequence == 120
    assert store.agent("a1").last_seen_ns == 9
    assert store.hosts()[0].events == 120
    found = store.search_events(EventQuery(host=host, page=Page(limit=1000)))
    assert [row.event_id for row in found] == [
        row.event_id for row in sorted(rows, key=lambda r: r.ts)
    ]
    first_page = store.search_events(EventQuery(page=Page(limit=50)))
    second_page = store.search_events(EventQuery(page=Page(limit=50, offset=50)))
    assert first_page + second_page == found[:100]
    assert store.search_events(EventQuery(host="other-host")) == []
    with pytest.raises(StorageError, match="unknown agent"):
        store.commit_batch(BatchCommit(agent_id="ghost", sequence=1, received_ns=1))


def test_a_fetch_of_batches_commits_in_one_transaction(store):
    """A worker's fetch: each batch stored or answered as a duplicate in order (one already
    acknowledged, one repeated within the fetch), all in one transaction: a batch that
    cannot be stored stores none of them."""
    rows = _lab_rows(60)
    host = rows[0].host
    _agent(store, "a1", host)
    _agent(store, "a2", host)
    assert store.commit_batch(
        BatchCommit(agent_id="a1", sequence=10, received_ns=1, events=rows[:10])
    )
    fetch = [
        BatchCommit(agent_id="a1", sequence=10, received_ns=2, events=rows[:10]),
        BatchCommit(agent_id="a1", sequence=30, received_ns=2, events=rows[10:30]),
        BatchCommit(agent_id="a2", sequence=20, received_ns=2, events=rows[30:50]),
        BatchCommit(agent_id="a1", sequence=30, received_ns=2, events=rows[10:30]),
    ]
    assert store.commit_batches(fetch) == [False, True, True, False]
    assert (store.agent("a1").acked_sequence, store.agent("a2").acked_sequence) == (30, 20)
    failing = [
        BatchCommit(agent_id="a1", sequence=40, received_ns=3, events=rows[50:60]),
        BatchCommit(agent_id="ghost", sequence=1, received_ns=3),
    ]
    with pytest.raises(StorageError, match="unknown agent"):
        store.commit_batches(failing)
    assert store.agent("a1").acked_sequence == 30
    assert store.hosts()[0].events == 50


def test_a_fetch_stores_what_its_batches_committed_one_by_one_would(store):
    """A fetch's batches go in with one statement per table: two versions of an incident,
    two checkpoints of a host, events of several batches (one with NUL in its text) end as
    successive commits would leave them."""
    rows = _lab_rows(30)
    host = rows[0].host
    _agent(store, "a1", "h1")
    _agent(store, "a2", host)
    nul = dataclasses.replace(rows[5], command_line="sh -c x\x00y")
    state = [
        Checkpoint(host="h1", agent_id="a1", sequence=s, written_ns=s, data=b"v%d" % s)
        for s in (1, 2)
    ]
    fetch = [
        BatchCommit(
            agent_id="a1",
            sequence=1,
            received_ns=1,
            incidents=[_incident(1)],
            alerts=[_alert("x1", level="high", first_ts=1)],
            checkpoint=state[0],
        ),
        BatchCommit(agent_id="a2", sequence=7, received_ns=2, events=[*rows[:5], nul]),
        BatchCommit(
            agent_id="a1",
            sequence=2,
            received_ns=3,
            incidents=[_incident(2)],
            alerts=[_alert("x1", level="high", first_ts=1), _alert("x2", level="low", first_ts=2)],
            checkpoint=state[1],
        ),
        BatchCommit(agent_id="a2", sequence=8, received_ns=4, events=rows[6:30]),
    ]
    assert store.commit_batches(fetch) == [True, True, True, True]
    assert store.incident("h1:inc-c1") == _incident(2)
    assert store.checkpoint("h1") == state[1]
    assert [(a.acked_sequence, a.last_seen_ns) for a in map(store.agent, ("a1", "a2"))] == [
        (2, 3),
        (8, 4),
    ]
    assert sorted(a.id for a in store.alerts(AlertQuery(host="h1"))) == ["x1", "x2"]
    found = store.search_events(EventQuery(host=host, page=Page(limit=100)))
    assert sorted(row.event_id for row in found) == sorted(row.event_id for row in rows)
    (stored,) = [row for row in found if row.event_id == nul.event_id]
    assert stored.command_line in ("sh -c x\x00y", "sh -c x\ufffdy")  # PostgreSQL: U+FFFD


def test_a_batchs_checkpoint_is_stored_with_it_and_replaces_the_last(store):
    _agent(store, "a1", "h1")
    assert store.checkpoint("h1") is None

    def checkpoint(sequence: int, data: bytes) -> Checkpoint:
        return Checkpoint(host="h1", agent_id="a1", sequence=sequence, written_ns=5, data=data)

    first = checkpoint(10, b"\x00state\xff" * 1000)  # binary, NUL bytes included
    assert store.commit_batch(
        BatchCommit(agent_id="a1", sequence=10, received_ns=1, checkpoint=first)
    )
    assert store.checkpoint("h1") == first
    later = checkpoint(20, b"later")
    assert store.commit_batch(
        BatchCommit(agent_id="a1", sequence=20, received_ns=2, checkpoint=later)
    )
    assert store.checkpoint("h1") == later
    # a batch the store already has changes nothing, its checkpoint included
    stale = checkpoint(20, b"stale")
    assert not store.commit_batch(
        BatchCommit(agent_id="a1", sequence=20, received_ns=3, checkpoint=stale)
    )
    assert store.checkpoint("h1") == later
    assert store.checkpoint("h2") is None


def test_event_search_filters(store):
    rows = _lab_rows(300)
    _agent(store, "a1", rows[0].host)
    store.commit_batch(BatchCommit(agent_id="a1", sequence=300, received_ns=1, events=rows))
    everything = Page(limit=1000)
    word = next(r.executable.rsplit("/", 1)[-1] for r in rows if r.executable)
    found = store.search_events(EventQuery(text=word.upper(), page=everything))
    expected = [
        r
        for r in rows
        if any(word in field.lower() for field in (r.executable, r.command_line, r.file_path))
        or word in r.remote.lower()
    ]
    assert len(found) == len(expected) > 0
    process = rows[10].process
    by_process = store.search_events(EventQuery(process=process, page=everything))
    assert len(by_process) == sum(r.process == process for r in rows)
    middle = sorted(r.ts for r in rows)[150]
    end = sorted(r.ts for r in rows)[200]
    window = store.search_events(EventQuery(since=middle, until=end, page=everything))
    assert len(window) == sum(middle <= r.ts < end for r in rows)


def test_alerts_filters_and_duplicates(store):
    _agent(store)
    alerts = [
        _alert("x1", level="high", first_ts=2 * MINUTE),
        _alert("x2", level="critical", first_ts=MINUTE),
    ]
    store.commit_batch(BatchCommit(agent_id="a1", sequence=1, received_ns=1, alerts=alerts))
    store.commit_batch(BatchCommit(agent_id="a1", sequence=2, received_ns=2, alerts=alerts[:1]))
    assert [a.id for a in store.alerts(AlertQuery())] == ["x1", "x2"]  # latest first_ts first
    assert [a.id for a in store.alerts(AlertQuery(newest_first=False))] == ["x2", "x1"]
    assert store.alerts(AlertQuery(level="high")) == [alerts[0]]
    assert [a.id for a in store.alerts(AlertQuery(since=2 * MINUTE))] == ["x1"]
    assert [a.id for a in store.alerts(AlertQuery(until=2 * MINUTE))] == ["x2"]
    assert store.hosts()[0].alerts == 2


def test_new_incident_version_keeps_the_analysts_status(store):
    _agent(store)
    store.commit_batch(
        BatchCommit(agent_id="a1", sequence=1, received_ns=1, incidents=[_incident(1)])
    )
    change = StatusChange(incident_id="h1:inc-c1", ts_ns=5, author="ana", old="", new="resolved")
    assert store.set_incident_status(change) is True
    store.commit_batch(
        BatchCommit(agent_id="a1", sequence=2, received_ns=2, incidents=[_incident(2)])
    )
    stored = store.incident("h1:inc-c1")
    assert stored == _incident(2, status="resolved")
    assert store.status_changes("h1:inc-c1") == [
        StatusChange(incident_id="h1:inc-c1", ts_ns=5, author="ana", old="new", new="resolved")
    ]
    assert store.incidents(IncidentQuery(status="resolved")) == [stored]
    assert store.incidents(IncidentQuery(severity="medium")) == []
    assert store.incidents(IncidentQuery(host="h2")) == []
    unknown = StatusChange(incident_id="nope", ts_ns=1, author="a", old="", new="resolved")
    assert store.set_incident_status(unknown) is False
    assert store.incident("nope") is None


def test_notes_in_order_and_only_on_known_incidents(store):
    _agent(store)
    store.commit_batch(
        BatchCommit(agent_id="a1", sequence=1, received_ns=1, incidents=[_incident(1)])
    )
    notes = [Note(incident_id="h1:inc-c1", ts_ns=n, author="ana", text=f"n{n}") for n in (9, 3)]
    assert all(store.add_note(note) for note in notes)
    assert store.notes("h1:inc-c1") == notes  # in the order written
    assert store.add_note(Note(incident_id="nope", ts_ns=1, author="a", text="x")) is False
    assert store.notes("nope") == []


def test_timeline_buckets_alerts_and_incidents(store):
    _agent(store)
    alerts = [
        _alert("x1", level="high", first_ts=MINUTE + 1),
        _alert("x2", level="high", first_ts=MINUTE + 2),
        _alert("x3", level="low", first_ts=3 * MINUTE + 5),
    ]
    batch = BatchCommit(
        agent_id="a1", sequence=1, received_ns=1, alerts=alerts, incidents=[_incident(1)]
    )
    store.commit_batch(batch)
    buckets = store.timeline(bucket_ns=MINUTE)
    assert [(b.start_ns, b.alerts, b.incidents) for b in buckets] == [
        (MINUTE, 2, 0),
        (3 * MINUTE, 1, 1),
    ]
    later = store.timeline(bucket_ns=MINUTE, since=2 * MINUTE)
    assert [(b.start_ns, b.alerts, b.incidents) for b in later] == [(3 * MINUTE, 1, 1)]


def test_unsupported_format_version_is_refused(tmp_path):
    path = tmp_path / "findings.db"
    open_findings_store(str(path)).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (FORMAT_VERSION + 1,))
    db.close()
    with pytest.raises(StorageError, match=f"format {FORMAT_VERSION + 1} is not supported"):
        open_findings_store(str(path))


def test_reopening_keeps_the_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'findings.db'}"
    first = open_findings_store(url)
    _agent(first)
    first.close()
    again = open_findings_store(url)
    assert again.agent("a1").host_id == "h1"
    again.close()


def test_tokens_are_revoked_once_and_their_use_recorded(store):
    store.add_token(_token("adm", Role.ADMIN))
    assert store.touch_token("adm", now_ns=50) is True
    assert store.token("adm").last_used_ns == 50
    assert store.revoke_token("adm", now_ns=60) is True
    assert store.revoke_token("adm", now_ns=70) is False  # already revoked: the first time stays
    assert store.token("adm").revoked_ns == 60
    assert store.revoke_token("nope", now_ns=60) is False
    assert [token.id for token in store.tokens()] == ["adm"]


V1 = Path(__file__).parents[2] / "data" / "manager" / "findings-v1.db"


def test_format_1_store_is_upgraded_with_its_data(tmp_path):
    path = tmp_path / "findings.db"
    path.write_bytes(V1.read_bytes())
    upgraded = open_findings_store(str(path))
    try:
        tokens = {token.id: token for token in upgraded.tokens()}
        assert {token.role for token in tokens.values()} == set(Role)
        admin = tokens["00000000000000a1"]
        assert (admin.label, admin.revoked_ns, admin.last_used_ns) == ("first admin", 0, 0)
        assert tokens["00000000000000c3"].used_ns == 1_700_000_000_000_000_005
        assert upgraded.agent("00000000000000d4").acked_sequence == 3
        assert upgraded.revoke_token("00000000000000b2", now_ns=7) is True
    finally:
        upgraded.close()
    with sqlite3.connect(path) as db:
        version = db.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
    db.close()
    assert version == (str(FORMAT_VERSION),)


@pytest.mark.postgres
def test_format_1_store_is_upgraded_on_postgresql(postgres_database):
    import psycopg

    from provarmor.storage.postgres_dialect import split_schema

    first = open_findings_store(postgres_database)
    first.add_token(_token("adm", Role.ADMIN, label="first"))
    first.close()
    base, schema = split_schema(postgres_database)
    with psycopg.connect(base, autocommit=True) as db:  # back to format 1's tokens table
        db.execute(
            f'ALTER TABLE "{schema}".tokens DROP COLUMN revoked_ns, DROP COLUMN last_used_ns'
        )
        db.execute(f"UPDATE \"{schema}\".meta SET value = '1' WHERE key = 'format_version'")
    upgraded = open_findings_store(postgres_database)
    try:
        assert upgraded.token("adm") == _token("adm", Role.ADMIN, label="first")
        assert upgraded.touch_token("adm", now_ns=5) is True
        assert upgraded.token("adm").last_used_ns == 5
    finally:
        upgraded.close()


V4 = Path(__file__).parents[2] / "data" / "manager" / "findings-v4.sql"


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_format_4_store_is_upgraded_keeping_its_data(request, tmp_path, kind):
    """Format 5 adds the hosts' checkpoints: a format 4 store has none (its hosts' analyses
    are rebuilt from their graphs once) and keeps everything else."""
    script = V4.read_text()
    if kind == "sqlite":
        path = tmp_path / "v4.db"
        with sqlite3.connect(path) as db:
            db.executescript(script.replace("{serial}", "INTEGER PRIMARY KEY"))
        db.close()
        url = f"sqlite:///{path}"
    else:
        import psycopg

        from provarmor.storage.postgres_dialect import split_schema

        url = request.getfixturevalue("postgres_database")
        conninfo, schema = split_schema(url)
        serial = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        with psycopg.connect(conninfo, autocommit=True) as db:
            db.execute(f'CREATE SCHEMA "{schema}"')
            db.execute(f'SET search_path TO "{schema}"')
            for statement in script.replace("{serial}", serial).split(";\n"):
                if statement.strip():
                    db.execute(statement)
    store = open_findings_store(url)
    host = "3d1219c7c4c5404aaa1f6d2a48adfda4"
    try:
        assert FORMAT_VERSION == 5
        assert store.agent("fedcba9876543210").acked_sequence == 2142
        assert store.action("act-1") is not None
        assert [n.text for n in store.notes("inc-c1-5f0c9a1e")] == ["sh from the web app"]
        assert store.checkpoint(host) is None
        saved = Checkpoint(
            host=host, agent_id="fedcba9876543210", sequence=2200, written_ns=1, data=b"x"
        )
        assert store.commit_batch(
            BatchCommit(agent_id="fedcba9876543210", sequence=2200, received_ns=1, checkpoint=saved)
        )
        assert store.checkpoint(host) == saved
    finally:
        store.close()
