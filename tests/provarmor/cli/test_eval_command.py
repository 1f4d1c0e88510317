import json
import shutil
from pathlib import Path

import typer
from typer.testing import CliRunner

from provarmor.cli import eval_command
from provarmor.model.errors import ConfigError

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "corpus"


def _app() -> typer.Typer:
    app = typer.Typer()
    eval_command.register(app, panel="Rules, models and the lab")
    app.command("noop")(lambda: None)
    return app


def test_eval_corpus_prints_and_writes_the_report(tmp_path):
    out = tmp_path / "corpus.json"
    result = CliRunner().invoke(
        _app(),
        ["eval", "--corpus", str(CORPUS), "--configurations", "rules", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "false incidents per chunk" in result.output
    document = json.loads(out.read_text())
    assert set(document["per_host_hour"]) == {"rules"}
    assert len(document["chunks"]) == 3
    assert len(document["incidents"]) == sum(
        sum(c["incidents"]["rules"]) for c in document["chunks"]
    )


def test_eval_corpus_refuses_datasets_and_a_model_beside_it(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    result = CliRunner().invoke(_app(), ["eval", str(corpus / "test"), "--corpus", str(corpus)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "--corpus takes no datasets" in str(result.exception)
