import json
import shutil

from typer.testing import CliRunner

from provarmor.cli.app import app
from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.model.errors import ConfigError
from provarmor.testing.datasets import benign_slice


def test_calibrate_stores_the_incident_rule_in_the_model(data_dir, tmp_path):
    model = shutil.copy(data_dir / "anomaly" / "model-v2.bundle", tmp_path / "model.bundle")
    validation = benign_slice(
        data_dir / "lab" / "benign-seed2", tmp_path / "validation", start=0.5, stop=1.0
    )
    result = CliRunner().invoke(
        app, ["calibrate", str(model), "--validation", str(validation)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "calibrated on" in result.output
    stored = load_bundle(model).metadata["incident_rule"]
    assert stored["min_score"] > 0
    assert "validation campaigns" in stored["source"]
    assert json.dumps(stored)


def test_calibrate_refuses_attack_data(data_dir, tmp_path):
    model = shutil.copy(data_dir / "anomaly" / "model-v2.bundle", tmp_path / "model.bundle")
    attack = data_dir / "lab" / "nodlink-ubuntu-seed1"
    result = CliRunner().invoke(app, ["calibrate", str(model), "--validation", str(attack)])
    assert isinstance(result.exception, ConfigError)
    assert "benign only" in str(result.exception)
