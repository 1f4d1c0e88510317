"""The journal and syslog importers on the real captures of tests/data/hostlogs."""

import shutil
from collections import Counter
from pathlib import Path

import pytest

from provarmor.model.actions import Action
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.hostlog import read_journal, read_syslog

DATA = Path(__file__).resolve().parents[3] / "data" / "hostlogs"
CAPTURES = [
    (read_syslog, "auth.log"),
    (read_syslog, "auth-traditional.log"),
    (read_syslog, "auth-rfc5424.log"),
    (read_journal, "journal.json"),
]


def _read(importer, path: Path):
    report = IngestReport(source=str(path))
    return list(importer(path, report=report, host=HostContext(id="vm1"))), report


@pytest.mark.parametrize(("importer", "name"), CAPTURES)
def test_every_line_of_a_real_capture_becomes_an_event(importer, name, tmp_path):
    path = tmp_path / name  # a copy: the traditional format's year comes from the mtime
    shutil.copyfile(DATA / name, path)
    events, report = _read(importer, path)
    assert report.rejected == 0 and report.errors == []
    assert report.records == report.events == len(events)
    actions = Counter((e.event.action, e.event.outcome) for e in events)
    assert actions[Action.AUTHENTICATE, "success"] == 2  # password and publickey
    assert actions[Action.USER_CREATE, "success"] == 3  # hlvictim, hladmin, hlroot
    assert actions[Action.RUN_AS, "failure"] == 1  # NOT in sudoers
    failures = [
        e
        for e in events
        if e.event.action is Action.AUTHENTICATE
        and e.authentication is not None
        and e.authentication.method == "password"
        and e.event.outcome == "failure"
    ]
    assert len(failures) == 27  # 9 against hlvictim, 3 each for 6 sprayed accounts
    assert {e.source.ip for e in failures if e.source} == {"10.99.15.1"}
    assert all(e.event.dataset in ("syslog", "journald") for e in events)


def test_bad_lines_are_named_by_file_and_line_and_good_ones_kept(tmp_path):
    lines = (DATA / "auth.log").read_text().splitlines()
    path = tmp_path / "auth.log"
    path.write_text("\n".join([lines[0], "garbage that is no syslog", lines[1], ""]) + "\n")
    events, report = _read(read_syslog, path)
    assert len(events) == 2 and report.rejected == 1
    assert report.errors[0].startswith(f"{path}:2: not a syslog line")


def test_bad_journal_entries_are_named_and_good_ones_kept(tmp_path):
    lines = (DATA / "journal.json").read_text().splitlines()
    path = tmp_path / "journal.json"
    path.write_text("\n".join([lines[0], "{oops", lines[1]]) + "\n")
    events, report = _read(read_journal, path)
    assert len(events) == 2 and report.rejected == 1
    assert report.errors[0].startswith(f"{path}:2: not JSON")


def test_reading_twice_gives_the_same_event_ids():
    first, _ = _read(read_journal, DATA / "journal.json")
    again, _ = _read(read_journal, DATA / "journal.json")
    ids = [e.event.id for e in first]
    assert ids == [e.event.id for e in again]
    assert len(set(ids)) == len(ids)
