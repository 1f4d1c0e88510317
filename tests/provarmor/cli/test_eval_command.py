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


def test_eval_corpus_refuses_datasets_and_a_model_beside_it(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    result = CliRunner().invoke(_app(), ["eval", str(corpus / "test"), "--corpus", str(corpus)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "--corpus takes no datasets" in str(result.exception)


def test_eval_builds_its_analysis_from_the_configuration(tmp_path):
    from provarmor.cli.app import app

    dataset = Path(__file__).resolve().parents[2] / "data" / "lab" / "nodlink-ubuntu-seed1"
    strict = ["--set", "incident.rule=score", "--set", "incident.min_score=1000000"]
    runs = {}
    for name, options in (("default", []), ("strict", strict)):
        out = tmp_path / f"{name}.json"
        result = CliRunner(env={"COLUMNS": "200"}).invoke(
            app, [*options, "eval", str(dataset), "--json", str(out)], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        runs[name] = (result.output, json.loads(out.read_text())["datasets"][0])
    assert runs["default"][1]["incidents"] > 0
    output, scored = runs["strict"]
    assert "incident when a campaign scores >= 1000000.00, configured" in output
    assert scored["incidents"] == 0
    assert scored["alerts"] == runs["default"][1]["alerts"]  # only the incident rule changed


def test_eval_reports_containment_for_a_run_recorded_with_response(tmp_path, data_dir):
    from provarmor.cli.app import app

    responded = data_dir / "lab" / "nodlink-ubuntu-response-seed1"
    plain = data_dir / "lab" / "nodlink-ubuntu-seed1"
    out = tmp_path / "eval.json"
    result = CliRunner(env={"COLUMNS": "250"}).invoke(
        app, ["eval", str(responded), str(plain), "--json", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "containment per dataset" in result.output
    assert "containment: mean ± std over seeds" in result.output
    document = json.loads(out.read_text())
    with_trail, without = document["datasets"]
    assert without["containment"] is None
    containment = with_trail["containment"]
    assert containment["contained"] and containment["mode"] == "enforce"
    assert containment["non_attack_process_actions"] == 0
    assert [a["kind"] for a in containment["actions"] if a["outcome"] == "done"] == [
        "kill",
        "quarantine",
    ]
    totals = document["totals"]
    assert totals["response_runs"] == 1 and totals["contained"] == 1.0
    assert totals["incident_to_containment_p99_s"] == containment["incident_to_containment_s"]
    assert set(document["containment_summary"]) == {"nodlink-ubuntu", "total"}


def test_eval_learn_scores_the_model_learning_mode_enables_on_the_window(tmp_path):
    from provarmor.cli.app import app
    from provarmor.detection.sigma.loader import bundled_rules
    from provarmor.evaluation.corpus_eval import evaluate_corpus

    window = ["--learn", str(CORPUS / "learning"), "--learn", str(CORPUS / "calibration")]
    out = tmp_path / "eval.json"
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app,
        ["eval", str(CORPUS / "test"), *window, "--json", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "learning mode: model version 1 learned on 2 datasets" in result.output
    scored = json.loads(out.read_text())["datasets"][0]
    # the same model and incidents as the corpus evaluation's rules + learning-mode model
    corpus = evaluate_corpus(CORPUS, rules=[bundled_rules()], seeds=[1], configurations=["both"])
    test = next(chunk for chunk in corpus.chunks if chunk.role == "test")
    assert scored["incidents"] == test.incidents["both"][0]
    assert scored["alerts"] > 0


def test_eval_learn_needs_a_test_dataset_recorded_after_the_window_and_no_model():
    from provarmor.cli.app import app

    late = ["--learn", str(CORPUS / "test")]
    result = CliRunner().invoke(app, ["eval", str(CORPUS / "learning"), *late])
    assert isinstance(result.exception, ConfigError)
    assert "no test dataset was recorded after the learning window" in str(result.exception)
    both = [*late, "--model", "model.bundle"]
    result = CliRunner().invoke(app, ["eval", str(CORPUS / "learning"), *both])
    assert isinstance(result.exception, ConfigError)
    assert "--learn or --model, not both" in str(result.exception)
