"""Shared helpers for the audit source tests: the recorded fixtures and their events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from provarmor.model.event import Event
from provarmor.sources.auditd.coalescer import AuditGroup, Coalescer
from provarmor.sources.auditd.importer import read_auditd
from provarmor.sources.auditd.records import (
    WANTED_TYPES,
    AuditRecord,
    parse_audit_line,
    parse_netlink_record,
)
from provarmor.sources.base import HostContext, IngestReport

DATA = Path(__file__).resolve().parents[4] / "tests" / "data" / "auditd"
HOST = HostContext(id="vm1", name="vm", boot_id="boot-1")


def import_log(path: Path) -> tuple[list[Event], IngestReport]:
    report = IngestReport(source=str(path))
    events = list(read_auditd(path, report=report, host=HOST))
    return events, report


def netlink_records(name: str) -> list[AuditRecord]:
    records = []
    for number, line in enumerate((DATA / name).read_text().splitlines(), 1):
        message = json.loads(line)
        records.append(parse_netlink_record(message["type"], message["text"], line=number))
    return records


@pytest.fixture
def auditd_data() -> Path:
    """tests/data/auditd: the recorded audit logs (see its README.md)."""
    return DATA


@pytest.fixture
def auditd_import() -> Callable[[Path], tuple[list[Event], IngestReport]]:
    """Import one audit log with the test host; returns (events, report)."""
    return import_log


@pytest.fixture
def auditd_netlink() -> Callable[[str], list[AuditRecord]]:
    """The records of a netlink capture (JSON lines of {"type", "text"})."""
    return netlink_records


@pytest.fixture(scope="session")
def attack_chain() -> tuple[list[Event], IngestReport]:
    return import_log(DATA / "attack_chain.log")


@pytest.fixture(scope="session")
def pipeline() -> tuple[list[Event], IngestReport]:
    return import_log(DATA / "pipeline.log")


@pytest.fixture(scope="session")
def file_ops() -> tuple[list[Event], IngestReport]:
    return import_log(DATA / "file_ops.log")


@pytest.fixture(scope="session")
def privileged() -> tuple[list[Event], IngestReport]:
    return import_log(DATA / "privileged.log")


@pytest.fixture(scope="session")
def curl_http() -> tuple[list[Event], IngestReport]:
    return import_log(DATA / "curl_http.log")


@pytest.fixture(scope="session")
def python_connect() -> tuple[list[Event], IngestReport]:
    return import_log(DATA / "python_connect.log")


def load_groups(path: Path) -> list[AuditGroup]:
    coalescer = Coalescer()
    groups: list[AuditGroup] = []
    for number, line in enumerate(path.read_text().split("\n"), 1):
        if not line:
            continue
        record = parse_audit_line(line, line=number)
        if record.type in WANTED_TYPES:
            groups += coalescer.push(record)
    groups += coalescer.flush()
    return [group for group in groups if group.syscall is not None]


@pytest.fixture
def auditd_groups() -> Callable[[Path], list[AuditGroup]]:
    """The coalesced syscall groups of a recorded log, in closing order."""
    return load_groups
