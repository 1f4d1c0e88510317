"""The findings-store seam: its records' defaults, and the contract every implementation
keeps: a batch is stored whole with its sequence, or not at all."""

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from provarmor.manager.auth import Role
from provarmor.manager.database import open_findings_store
from provarmor.manager.store import (
    AgentRecord,
    AlertQuery,
    AlertRow,
    BatchCommit,
    EventQuery,
    IncidentQuery,
    IncidentRow,
    Page,
    TokenRecord,
)
from provarmor.model.errors import StorageError


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'findings.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    opened = open_findings_store(url)
    opened.add_agent(
        AgentRecord(id="a1", host_id="h1", hostname="vm", enrolled_ns=1),
        credential=TokenRecord(id="a1", role=Role.AGENT, salt="00", digest="ab", created_ns=1),
    )
    yield opened
    opened.close()


def test_record_defaults():
    token = TokenRecord(id="t", role=Role.ADMIN, salt="00", digest="ab", created_ns=1)
    assert (token.expires_ns, token.used_ns, token.label) == (0, 0, "")
    agent = AgentRecord(id="a", host_id="h", hostname="vm", enrolled_ns=1)
    assert (agent.acked_sequence, agent.last_seen_ns, agent.status_json) == (0, 0, "")
    assert Page() == Page(limit=100, offset=0)
    assert EventQuery() == EventQuery(host="", process="", text="", since=0, until=0, page=Page())
    assert AlertQuery().page == IncidentQuery().page == Page()


def test_records_are_frozen_and_batches_do_not_share_lists():
    first = BatchCommit(agent_id="a", sequence=1, received_ns=1)
    second = BatchCommit(agent_id="a", sequence=2, received_ns=1)
    assert first.events is not second.events
    assert first.alerts is not second.alerts
    assert first.incidents is not second.incidents
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.sequence = 3  # type: ignore[misc]


def test_failed_batch_stores_nothing_and_is_not_acknowledged(store):
    alert = AlertRow(
        host="h1",
        id="x1",
        rule_id="r",
        title="t",
        level="high",
        detector="sigma",
        first_ts=10,
        last_ts=10,
        score=1.0,
        json="{}",
    )
    broken = IncidentRow(
        id="h1:inc-c1",
        host="h1",
        engine_id="inc-c1",
        severity="high",
        score=1.0,
        status="new",
        title="t",
        first_ts=10,
        last_ts=10,
        updated_ts=10,
        version=1,
        json=None,  # type: ignore[arg-type]  # NOT NULL: the write fails half way
    )
    batch = BatchCommit(agent_id="a1", sequence=5, received_ns=9, alerts=[alert])
    with pytest.raises((sqlite3.IntegrityError, StorageError)):
        store.commit_batch(dataclasses.replace(batch, incidents=[broken]))
    assert store.agent("a1").acked_sequence == 0
    assert store.alerts(AlertQuery()) == []
    assert store.incidents(IncidentQuery()) == []
    assert store.commit_batch(batch) is True  # the same sequence is then accepted
    assert store.agent("a1").acked_sequence == 5
    assert store.alerts(AlertQuery()) == [alert]
