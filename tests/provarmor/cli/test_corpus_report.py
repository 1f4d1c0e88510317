"""``provarmor eval --corpus``: the real-world corpus report printed (host data escaped) and
written as JSON."""

import io
import json
from pathlib import Path

from rich.console import Console

from provarmor.cli.corpus_report import _chunk_table, _incident_table
from provarmor.evaluation.corpus_eval import ChunkResult, CorpusReport, FalseIncident

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "corpus"


def test_eval_corpus_prints_and_writes_the_report(tmp_path, invoke):
    out = tmp_path / "corpus.json"
    result = invoke("eval", "--corpus", CORPUS, "--configurations", "rules", "--json", out)
    assert result.exit_code == 0, result.output
    assert "false incidents per chunk" in result.output
    document = json.loads(out.read_text())
    assert set(document["per_host_hour"]) == {"rules"}
    assert len(document["chunks"]) == 3
    assert len(document["incidents"]) == sum(
        sum(c["incidents"]["rules"]) for c in document["chunks"]
    )


def test_host_data_in_the_report_reaches_the_terminal_escaped(assert_no_raw_controls):
    """Titles and root causes carry command lines from the recorded hosts."""
    hostile = "\x1b]0;owned\x07\x1b[2J\u202etxt.exe\r"
    report = CorpusReport(
        chunks=[ChunkResult(chunk=f"chunk{hostile}", role="test", hours=1.0, events=10)],
        incidents=[
            FalseIncident(
                configuration="rules",
                seed=0,
                chunk=f"chunk{hostile}",
                title=f"curl wrote /tmp/{hostile}",
                severity="high",
                score=3.0,
                root_cause=f"/bin/sh -c {hostile}",
                processes=2,
            )
        ],
    )
    buffer = io.StringIO()
    terminal = Console(file=buffer, width=400)  # not a terminal: rich adds no escapes itself
    terminal.print(_chunk_table(report, ["rules"]))
    terminal.print(_incident_table(report))

    printed = buffer.getvalue()
    assert_no_raw_controls(printed)
    assert "/bin/sh -c \\x1b]0;owned\\x07" in printed
