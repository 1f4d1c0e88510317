"""The application as a first-time user meets it: help, version, option names, start-up cost.

Help pages are read from real ``python -m provarmor`` processes with a given terminal width."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from provarmor import __version__

HEAVY = ("fastapi", "uvicorn", "starlette", "numpy", "sigma", "httpx", "cryptography")
"""Packages only some commands need; help and light commands must not import them."""

COMMANDS = [
    [],
    ["ingest"],
    ["convert"],
    ["stats"],
    ["trace"],
    ["export"],
    ["detect"],
    ["demo"],
    ["eval"],
    ["train"],
    ["calibrate"],
    ["up"],
    ["replay"],
    ["agent"],
    ["agent", "status"],
    ["server"],
    ["server", "token", "create"],
    ["server", "enrollment-token"],
    ["server", "certs"],
    ["lab", "run"],
    ["lab", "atomics"],
    ["rules", "check"],
    ["config", "show"],
]

LOADED = """
import json, sys
sys.argv = ["provarmor", *sys.argv[1:]]
from provarmor.cli import main
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
print("EXIT=" + json.dumps(code))
print("LOADED=" + json.dumps(sorted(sys.modules)))
"""


def run(*args: str, columns: int = 100) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provarmor", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": str(columns)},
    )


def modules_after(*args: str) -> tuple[object, set[str]]:
    """The exit code of a real ``provarmor ARGS`` process and every module it has imported
    when it ends."""
    result = subprocess.run(
        [sys.executable, "-c", LOADED, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return json.loads(lines["EXIT"]), set(json.loads(lines["LOADED"]))


def heavy_modules_after(*args: str) -> list[str]:
    """The heavy packages a real ``provarmor ARGS`` process has imported when it ends."""
    _code, loaded = modules_after(*args)
    return sorted({name.split(".")[0] for name in loaded} & set(HEAVY))


@pytest.mark.parametrize("command", [[], ["trace"], ["up"], ["server"], ["detect"]])
def test_help_imports_none_of_the_heavy_packages(command):
    assert heavy_modules_after(*command, "--help") == []


def test_version_flag_and_light_commands_import_none_of_the_heavy_packages(tmp_path):
    assert heavy_modules_after("--version") == []
    assert heavy_modules_after("config", "show") == []
    assert heavy_modules_after("stats", "--db", str(tmp_path / "none.db")) == []


def test_eval_train_and_calibrate_run_without_the_attack_lab(data_dir, tmp_path):
    """Scoring, training and calibrating read datasets; none of them loads the lab's network
    namespaces, jails or scenarios."""
    model = shutil.copy(data_dir / "anomaly" / "model-v2.bundle", tmp_path / "model.bundle")
    benign, attack = data_dir / "lab" / "benign-seed2", data_dir / "lab" / "nodlink-ubuntu-seed1"
    runs = {
        "provarmor.evaluation.scoring": ["eval", str(attack), "--model", str(model)],
        "provarmor.evaluation.dataset": ["train", str(benign), "--out", str(tmp_path / "new")],
        "provarmor.evaluation.protocol": ["calibrate", str(model), "--validation", str(benign)],
    }
    for used, args in runs.items():
        code, loaded = modules_after(*args)
        assert code == 0, args
        assert used in loaded, args
        lab = [name for name in loaded if name.split(".")[:2] == ["provarmor", "lab"]]
        assert lab == [], args


def test_version_flag_prints_the_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"provarmor {__version__}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "provarmor")
def test_help_shows_no_markup_and_no_value_type_on_flags(command):
    result = run(*command, "--help", columns=200)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "``" not in text and "`" not in text, text
    assert not re.search(r":(mod|data|func|class):", text), text
    assert "<bool>" not in text, text


def test_short_options_mean_one_thing_everywhere():
    """-f is --format and -o is --out wherever they exist; settings are --set."""
    for command in COMMANDS:
        text = run(*command, "--help", columns=300).stdout
        for line in text.splitlines():
            if re.search(r"\s-f\s", line):
                assert "--format" in line, (command, line)
            if re.search(r"\s-o\s", line):
                assert "--out" in line, (command, line)
    top = run("--help", columns=300).stdout
    assert "--set" in top


def test_the_service_commands_are_grouped_in_help():
    text = run("--help", columns=120).stdout
    panels = re.split(r"╭─ ", text)
    service = next(panel for panel in panels if panel.startswith("Run on hosts"))
    for name in ("up", "agent", "server", "replay"):
        assert re.search(rf"│ {name}\s", service), service
    assert "ingest" not in service
