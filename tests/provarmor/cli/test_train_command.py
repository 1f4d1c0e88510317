import builtins
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from provarmor.cli import train_command
from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.model.errors import ConfigError

LAB = Path(__file__).resolve().parents[2] / "data" / "lab"


def _app() -> typer.Typer:
    app = typer.Typer()
    train_command.register(app, panel="models")
    app.command("noop")(lambda: None)
    return app


def test_train_never_opens_label_files(tmp_path, monkeypatch):
    dataset = tmp_path / "benign"
    shutil.copytree(LAB / "benign-seed2", dataset)
    (dataset / "labels.json").write_text("{not json")
    real_open = builtins.open
    real_read = Path.read_bytes

    def guarded_open(file, *args, **kwargs):
        assert "labels" not in str(file), f"label file opened: {file}"
        return real_open(file, *args, **kwargs)

    def guarded_read(self):
        assert "labels" not in self.name, f"label file read: {self}"
        return real_read(self)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(Path, "read_bytes", guarded_read)
    data = train_command.gather([dataset], validation=[], fraction=0.2)
    assert len(data.training) > 500
    assert len(data.validation) == data.datasets[0]["held_out_processes"]
    assert data.datasets[0]["name"] == "benign-mix"


def test_attack_datasets_are_refused():
    with pytest.raises(ConfigError, match="benign data only"):
        train_command.gather([LAB / "nodlink-ubuntu-seed1"], validation=[], fraction=0.2)
    with pytest.raises(ConfigError, match="benign data only"):
        train_command.gather(
            [LAB / "benign-seed2"], validation=[LAB / "nodlink-ubuntu-seed1"], fraction=0.2
        )


@pytest.mark.slow
def test_train_command_writes_a_loadable_bundle(tmp_path):
    out = tmp_path / "model.bundle"
    result = CliRunner().invoke(
        _app(), ["train", str(LAB / "benign-seed2"), "--out", str(out), "--seed", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "threshold" in result.output
    model = load_bundle(out)
    assert model.metadata["datasets"][0]["role"] == "training"
    assert model.metadata["parameters"]["seed"] == 2
