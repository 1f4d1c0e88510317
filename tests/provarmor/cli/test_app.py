"""The application as a first-time user meets it: help, version, option names, start-up cost.

Help pages are read from real ``python -m provarmor`` processes with a given terminal width."""

import json
import os
import re
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
try:
    main()
except SystemExit:
    pass
print("LOADED=" + json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def run(*args: str, columns: int = 100) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provarmor", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": str(columns)},
    )


def heavy_modules_after(*args: str) -> list[str]:
    """The heavy packages a real ``provarmor ARGS`` process has imported when it ends."""
    result = subprocess.run(
        [sys.executable, "-c", LOADED, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("LOADED="))
    return sorted(set(json.loads(line.removeprefix("LOADED="))) & set(HEAVY))


@pytest.mark.parametrize("command", [[], ["trace"], ["up"], ["server"], ["detect"]])
def test_help_imports_none_of_the_heavy_packages(command):
    assert heavy_modules_after(*command, "--help") == []


def test_version_flag_and_light_commands_import_none_of_the_heavy_packages(tmp_path):
    assert heavy_modules_after("--version") == []
    assert heavy_modules_after("config", "show") == []
    assert heavy_modules_after("stats", "--db", str(tmp_path / "none.db")) == []


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
