"""The application as a first-time user meets it: help, version, option names, start-up cost.

Help pages are read from real ``python -m provarmor`` processes with a given terminal width."""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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
    ["server", "retention"],
    ["cluster"],
    ["cluster", "up"],
    ["worker"],
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


@functools.cache
def wide_help(command: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """``provarmor COMMAND --help`` on a 300-column terminal (one real process per command
    for the whole module: several tests read the same pages)."""
    return run(*command, "--help", columns=300)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "provarmor")
def test_help_shows_no_markup_and_no_value_type_on_flags(command):
    result = wide_help(tuple(command))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "``" not in text and "`" not in text, text
    assert not re.search(r":(mod|data|func|class):", text), text
    assert "<bool>" not in text, text


def test_short_options_mean_one_thing_everywhere():
    """-f is --format and -o is --out wherever they exist; settings are --set."""
    for command in COMMANDS:
        text = wide_help(tuple(command)).stdout
        for line in text.splitlines():
            if re.search(r"\s-f\s", line):
                assert "--format" in line, (command, line)
            if re.search(r"\s-o\s", line):
                assert "--out" in line, (command, line)
    top = wide_help(()).stdout
    assert "--set" in top


def test_the_service_commands_are_grouped_in_help():
    text = run("--help", columns=120).stdout
    panels = re.split(r"╭─ ", text)
    service = next(panel for panel in panels if panel.startswith("Run on hosts"))
    for name in ("up", "agent", "server", "replay"):
        assert re.search(rf"│ {name}\s", service), service
    assert "ingest" not in service


def test_a_setting_given_with_set_reaches_the_configuration():
    result = run("--set", "graph.max_nodes=1234", "config", "show")
    assert result.returncode == 0, result.stderr
    assert "max_nodes: 1234" in result.stdout


CHOICE_OPTIONS = [
    (["ingest"], "--format", "importers"),
    (["convert"], "--format", "importers"),
    (["detect"], "--format", "importers"),
    (["detect"], "--alert-format", "alert formats"),
    (["detect"], "--incident-format", "incident formats"),
    (["agent"], "--sensor", "sensors"),
    (["up"], "--sensor", "sensors"),
    (["lab", "run"], "--sensor", "sensors"),
    (["lab", "atomics"], "--sensor", "sensors"),
]
"""Every option whose values are a registry's names, and the registry."""


def offered(help_text: str, option: str) -> list[str]:
    """The choices ``--help`` shows for ``option`` (``<a|b|c>``)."""
    match = re.search(rf"{option}\s+(?:-\w\s+)?<([^>]+)>", help_text)
    assert match, f"{option} shows no choices:\n{help_text}"
    return match.group(1).split("|")


def registered() -> dict[str, list[str]]:
    from provarmor.outputs.alert_formats import FORMATS
    from provarmor.outputs.incident_formats import INCIDENT_FORMATS
    from provarmor.sources.registry import IMPORTERS, SENSORS

    return {
        "importers": list(IMPORTERS),
        "alert formats": list(FORMATS),
        "incident formats": list(INCIDENT_FORMATS),
        "sensors": ["auto", *SENSORS],
    }


def test_the_command_line_offers_exactly_what_the_registries_hold():
    expected = registered()
    for command, option, registry in CHOICE_OPTIONS:
        text = wide_help(tuple(command)).stdout
        assert offered(text, option) == expected[registry], (command, option)


ONE_MORE_LINE = {
    "provarmor.sources.registry": [
        ('    "ndjson": ', '    "tracee": deferred("provarmor.sources.ndjson:read_ndjson"),'),
        ('    "audit": ', '    "replay": deferred("provarmor.testing.sensors:ReplaySensor"),'),
    ],
    "provarmor.outputs.alert_formats": [
        ('    "falco": ', '    "brief": lambda alert: {"rule": alert.rule_id},'),
    ],
    "provarmor.outputs.incident_formats": [
        ('    "svg": ', '    "md": IncidentRendering(lambda found: found.title, document=True),'),
    ],
}
"""Per registry module: (the line to insert before, the registry line to insert)."""

EDITED_CLI = """
import importlib.util, json, sys

for name, edits in json.loads(sys.argv[1]).items():
    spec = importlib.util.find_spec(name)
    source = spec.loader.get_source(name)
    for before, line in edits:
        assert before in source, before
        source = source.replace(before, line + "\\n" + before, 1)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source, spec.origin, "exec"), module.__dict__)
sys.argv = ["provarmor", *sys.argv[2:]]
from provarmor.cli import main
main()
"""
"""The command line as if each registry had one more line (the modules are edited in memory
before anything imports them)."""


def test_a_line_added_to_a_registry_is_a_choice_everywhere_with_no_other_edit(tmp_path):
    def run_edited(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", EDITED_CLI, json.dumps(ONE_MORE_LINE), *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "COLUMNS": "300"},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    detect = run_edited("detect", "--help")
    assert "tracee" in offered(detect, "--format")
    assert "brief" in offered(detect, "--alert-format")
    assert "md" in offered(detect, "--incident-format")
    assert "replay" in offered(run_edited("agent", "--help"), "--sensor")
    settings = run_edited(
        "--set", "agent.sensor=replay", "--set", "manager.incident_format=md", "config", "show"
    )
    assert "sensor: replay" in settings
    assert "incident_format: md" in settings
    recorded = Path(__file__).resolve().parents[2] / "data" / "lineage" / "attack-acts.ndjson.gz"
    run_edited(
        "detect", str(recorded), "--format", "tracee", "--alert-format", "brief",
        "--out", str(tmp_path / "alerts.jsonl"), "--incidents", str(tmp_path / "stories"),
        "--incident-format", "md",
    )  # fmt: skip
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert alerts and all(list(alert) == ["rule"] for alert in alerts)
    stories = sorted((tmp_path / "stories").iterdir())
    assert stories and all(path.suffix == ".md" for path in stories)
