"""Generated reference documents must match what the code generates (docs are current)."""

from pathlib import Path

from typer.testing import CliRunner

from provarmor.cli.app import app

ROOT = Path(__file__).resolve().parents[2]


def test_config_reference_is_current():
    result = CliRunner().invoke(app, ["config", "schema"])
    assert result.exit_code == 0
    committed = (ROOT / "docs" / "reference" / "config.md").read_text()
    assert committed == result.output, "run: provarmor config schema > docs/reference/config.md"
