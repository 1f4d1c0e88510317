"""``provarmor eval --corpus``: the real-world corpus report printed and written as JSON."""

import json
from pathlib import Path

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
