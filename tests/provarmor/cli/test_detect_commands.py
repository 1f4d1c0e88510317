"""``provarmor detect`` on the real host-log captures of
tests/data/hostlogs: the bundled rules raise the brute force, spraying, login after guessing,
sudo, uid-0 account and login-by-a-new-account alerts from journald and every syslog shape."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provarmor.cli.app import app

DATA = Path(__file__).resolve().parents[2] / "data"
runner = CliRunner(env={"COLUMNS": "200"})
EXPECTED = {
    "SSH password guessing against one account": 1,
    "SSH password spraying across accounts": 2,
    "SSH login after password guessing": 1,
    "sudo refused to a user not in sudoers": 1,
    "sudo password failures": 1,
    "Account created or changed with uid 0": 1,
    "SSH login accepted": 2,
    "Local account created (host log)": 3,
    "SSH login by an account created minutes before": 2,  # hlvictim and hladmin
}


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("auth.log", "syslog"),
        ("auth-traditional.log", "syslog"),
        ("auth-rfc5424.log", "syslog"),
        ("journal.json", "journal"),
        ("auth.log", None),
    ],
)
def test_detect_raises_the_host_log_rules_on_real_recordings(name, fmt, tmp_path):
    recording = tmp_path / name
    shutil.copyfile(DATA / "hostlogs" / name, recording)
    out = tmp_path / "alerts.jsonl"
    args = ["detect", str(recording), "--out", str(out)]
    if fmt is not None:
        args += ["--format", fmt]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert Counter(alert["rule"]["name"] for alert in alerts) == EXPECTED
    guessed = next(a for a in alerts if a["rule"]["name"] == "SSH login after password guessing")
    assert {t["id"] for t in guessed["threat"]["technique"]} == {"T1110.001", "T1078.003"}
    assert guessed["event"]["count"] == 6  # the 5 failures that made the burst, the login
