"""Telling a recorded file's format from its first records (real fixtures)."""

import gzip
from pathlib import Path

import pytest

from provarmor.sources.sniff import sniff_format

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (DATA / "auditd" / "attack_chain.log", "auditd"),
        (DATA / "cdm" / "cadets_cp.cdm.json", "cdm"),
        (DATA / "cdm" / "theia_head120.cdm.json", "cdm"),
        (DATA / "sysdig" / "session.sysdig.jsonl", "sysdig"),
        (DATA / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz", "ndjson"),
        (DATA / "hostlogs" / "journal.json", "journal"),
        (DATA / "hostlogs" / "auth.log", "syslog"),
        (DATA / "hostlogs" / "auth-traditional.log", "syslog"),
        (DATA / "hostlogs" / "auth-rfc5424.log", "syslog"),
    ],
)
def test_each_importer_format_is_recognised(path, expected):
    assert sniff_format(path) == expected


def test_gzip_is_opened_transparently(tmp_path):
    packed = tmp_path / "audit.log.gz"
    packed.write_bytes(gzip.compress((DATA / "auditd" / "attack_chain.log").read_bytes()))
    assert sniff_format(packed) == "auditd"


def test_unknown_mixed_empty_and_unreadable_files_are_not_guessed(tmp_path):
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello\n")
    mixed = tmp_path / "mixed.log"
    audit_line = (DATA / "auditd" / "attack_chain.log").read_text().splitlines()[0]
    sysdig_line = (DATA / "sysdig" / "session.sysdig.jsonl").read_text().splitlines()[0]
    mixed.write_text(f"{audit_line}\n{sysdig_line}\n")
    empty = tmp_path / "empty"
    empty.write_text("\n\n")
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(b"x" * 1000)[:20])
    for path in (unknown, mixed, empty, broken, tmp_path / "missing"):
        assert sniff_format(path) is None, path
