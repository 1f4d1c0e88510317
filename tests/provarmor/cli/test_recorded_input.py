"""The input side shared by ``ingest``, ``convert``, ``detect`` and ``demo``: the format given
or told from the content, and what is printed (and the exit code) for inputs with rejected,
skipped, dropped or unread records. Reports come from the real importers on real files."""

import gzip
import json
from pathlib import Path

import pytest
import typer

from provarmor.cli.recorded_input import (
    MAX_ERRORS_SHOWN,
    exit_on_failed_inputs,
    format_of,
    importer_for,
    print_problems,
)
from provarmor.model.errors import ConfigError
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.registry import IMPORTERS, ImportFormat

DATA = Path(__file__).resolve().parents[2] / "data"
CHAIN = DATA / "auditd" / "attack_chain.log"
SYSDIG = DATA / "sysdig" / "session.sysdig.jsonl"
LAB_EVENTS = DATA / "lab" / "nodlink-ubuntu-seed1" / "events.ndjson.gz"


def _import(path: Path, format: ImportFormat | None = None) -> IngestReport:
    report = IngestReport(source=str(path))
    for _event in importer_for(path, format)(path, report=report, host=HostContext()):
        pass
    return report


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """No path wraps, however long the test's tmp folder (under pytest-xdist it holds the
    worker's name too)."""
    monkeypatch.setenv("COLUMNS", "400")


def _printed(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("path", "expected"),
    [(CHAIN, "auditd"), (SYSDIG, "sysdig"), (LAB_EVENTS, "ndjson")],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_the_format_is_told_from_the_content_unless_given(path, expected):
    assert format_of(path, None) == expected
    assert format_of(path, ImportFormat("cdm")) == "cdm"  # what is given wins; the importer judges
    assert importer_for(path, None) is IMPORTERS[expected]


def test_content_of_no_known_format_names_the_file_and_the_choices(tmp_path):
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello\nworld\n")
    with pytest.raises(ConfigError) as caught:
        format_of(unknown, None)
    assert caught.value.location == str(unknown)
    assert "cannot tell the format" in str(caught.value)
    assert all(choice.value in str(caught.value) for choice in ImportFormat)


def test_the_format_choices_are_the_importers():
    assert [choice.value for choice in ImportFormat] == list(IMPORTERS)


def test_rejected_records_are_shown_up_to_a_limit_then_counted(tmp_path, capsys):
    bad = tmp_path / "bad.ndjson"
    bad.write_text("".join(f'{{"broken": {n}\n' for n in range(MAX_ERRORS_SHOWN + 5)))
    report = _import(bad, ImportFormat("ndjson"))
    assert report.rejected == MAX_ERRORS_SHOWN + 5

    print_problems(report)

    printed = _printed(capsys)
    assert printed.count("rejected ") == MAX_ERRORS_SHOWN + 1  # ten records and the rest
    assert f"{bad}:1:" in printed and f"{bad}:{MAX_ERRORS_SHOWN}:" in printed
    assert f"{bad}:{MAX_ERRORS_SHOWN + 1}:" not in printed
    assert "... and 5 more rejected records" in printed
    with pytest.raises(typer.Exit) as exited:
        exit_on_failed_inputs([report])
    assert exited.value.exit_code == 1
    assert f"{bad}: every record was rejected" in _printed(capsys)


def test_an_input_not_read_to_its_end_is_named_and_fails_the_run(tmp_path, capsys):
    whole = gzip.compress(gzip.decompress(LAB_EVENTS.read_bytes()))
    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    report = _import(cut)
    assert report.events and report.stopped

    print_problems(report)
    assert f"not read to the end: {cut}:" in _printed(capsys)
    with pytest.raises(typer.Exit):
        exit_on_failed_inputs([_import(CHAIN), report])
    printed = _printed(capsys)
    assert f"{cut}: not read to the end" in printed
    assert str(CHAIN) not in printed


def test_skipped_records_and_dropped_labels_are_reported_and_the_run_goes_on(tmp_path, capsys):
    labelled = tmp_path / "labelled.sysdig.jsonl"
    lines = SYSDIG.read_text().splitlines()
    labelled.write_text(
        "\n".join(json.dumps({**json.loads(line), "is_warn": 0}) for line in lines) + "\n"
    )
    report = _import(labelled)
    assert report.skipped and not report.rejected

    print_problems(report)
    exit_on_failed_inputs([report])  # nothing failed: no exit

    printed = _printed(capsys)
    assert f"dropped at import (never passed on): is_warn ({len(lines):,})" in printed
    reasons = ", ".join(f"{name} ({count:,})" for name, count in report.skipped.most_common(8))
    assert f"skipped on purpose: {reasons}" in printed
    assert "rejected" not in printed and "error" not in printed


def test_nothing_is_printed_for_a_clean_input(capsys):
    report = _import(LAB_EVENTS)
    print_problems(report)
    exit_on_failed_inputs([report])
    assert capsys.readouterr().out == ""


def test_ingest_and_detect_tell_the_format_from_the_content(tmp_path, invoke):
    result = invoke("ingest", CHAIN, "--db", tmp_path / "g.db")
    assert result.exit_code == 0, result.output
    stats = invoke("stats", "--db", tmp_path / "g.db").output
    assert "exec events" in stats
    out = tmp_path / "alerts.jsonl"
    detected = invoke("detect", CHAIN, "--out", out)
    assert detected.exit_code == 0, detected.output
    assert out.read_text().strip()
