"""SigmaDetector end to end: rules from YAML, events in, alerts out."""

from __future__ import annotations

import time

import msgspec
import pytest

from provarmor.detection.engine import Detector
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.detection.sigma.loader import load_rule_paths
from provarmor.detection.sigma.ruleset import build_ruleset
from provarmor.model.actions import Action
from provarmor.model.attack import load_attack_table
from provarmor.testing.factories import make_event

NC = """title: Netcat listener
id: 3f8a1c2d-0000-4000-8000-0000000000aa
description: nc listening for a reverse shell
logsource: {product: linux, category: process_creation}
detection:
    sel:
        Image|endswith: ['/nc', '/ncat']
        CommandLine|contains: ' -l'
    condition: sel
level: high
tags: [attack.execution, attack.t1059.004]
"""

AUDIT = """title: chmod 777
id: 3f8a1c2d-0000-4000-8000-0000000000ab
logsource: {product: linux, service: auditd}
detection:
    sel: {type: EXECVE, a0: chmod, a1: 777}
    path: {type: PATH, name|startswith: /tmp/}
    condition: sel or path
level: medium
"""


def test_detector_satisfies_the_seam(sigma):
    detector: Detector = sigma(NC)
    assert detector.name == "sigma"


def test_alert_names_rule_attack_and_entities(sigma, exec_of):
    detector = sigma(NC)
    event = exec_of("nc -lvnp 4444", exe="/usr/bin/nc", pid=77, ts=123)
    (alert,) = detector.on_event(event)
    assert alert.rule_id == "3f8a1c2d-0000-4000-8000-0000000000aa"
    assert alert.rule_title == "Netcat listener"
    assert alert.level == "high"
    assert alert.description == "nc listening for a reverse shell"
    assert [(t.id, t.name) for t in alert.techniques] == [("T1059.004", "Unix Shell")]
    assert [(t.id, t.name) for t in alert.tactics] == [("TA0002", "Execution")]
    assert alert.event_ids == (event.event.id,)
    assert alert.process_entity_ids == ("test-host-p77",)
    assert alert.file_paths == ("/usr/bin/nc",)
    assert alert.host_id == "test-host"
    assert (alert.first_timestamp, alert.last_timestamp, alert.count) == (123, 123, 1)
    assert alert.id == f"{alert.rule_id}@{event.event.id}"
    assert detector.stats.events == 1
    assert detector.stats.matches[alert.rule_id] == 1


def test_events_of_other_categories_do_not_meet_the_rule(sigma):
    detector = sigma(NC)
    assert detector.on_event(make_event(Action.OPEN, exe="/usr/bin/nc", path="/x -l")) == []
    assert detector.on_event(make_event(Action.CONNECT, exe="/usr/bin/nc", ip="1.2.3.4")) == []


def test_auditd_rules_see_each_audit_record_once_per_event(sigma, exec_of):
    detector = sigma(AUDIT)
    event = exec_of("chmod 777 /tmp/x", exe="/usr/bin/chmod", auditd={"syscall": "execve"})
    assert len(detector.on_event(event)) == 1  # EXECVE matches; PATH of the program does not
    write = msgspec.structs.replace(make_event(Action.WRITE, path="/tmp/drop"), auditd={})
    assert len(detector.on_event(write)) == 1
    assert detector.on_event(make_event(Action.WRITE, path="/tmp/drop")) == []  # no auditd
    assert detector.on_event(exec_of("chmod 777 /tmp/x", exe="/usr/bin/chmod")) == []


def test_a_failing_predicate_is_counted_not_raised(sigma, exec_of):
    detector = sigma(NC)
    (rule,) = detector.index.event_bucket(Action.EXEC).rules

    def broken(record):
        raise RuntimeError("bug")

    object.__setattr__(rule, "predicate", broken)
    assert detector.on_event(exec_of("nc -l", exe="/usr/bin/nc")) == []
    assert detector.stats.rule_failures[rule.info.key] == 1
    # a verdict with a failure in it is not remembered: the same record fails (counted) again
    assert detector.on_event(exec_of("nc -l", exe="/usr/bin/nc")) == []
    assert detector.stats.rule_failures[rule.info.key] == 2


def test_a_repeated_record_is_judged_from_the_memo_with_the_same_alerts(sigma, exec_of):
    detector = sigma(NC)
    memo = detector.index.event_bucket(Action.EXEC).memo
    first = detector.on_event(exec_of("nc -lvnp 4444", exe="/usr/bin/nc", pid=77, ts=1))
    again = detector.on_event(exec_of("nc -lvnp 4444", exe="/usr/bin/nc", pid=78, ts=2))
    quiet = [detector.on_event(exec_of("nc -z host 22", exe="/usr/bin/nc", ts=3)) for _ in "ab"]
    assert (memo.misses, memo.hits) == (2, 2)
    assert [a.rule_title for a in first + again] == ["Netcat listener"] * 2
    assert again[0].process_entity_ids == ("test-host-p78",)
    assert again[0].last_timestamp == 2
    assert quiet == [[], []]
    assert detector.stats.matches[first[0].rule_id] == 2


def test_the_detectors_of_one_rule_set_share_its_index(test_rules):
    ruleset, _ = build_ruleset(load_rule_paths([test_rules]), attack=load_attack_table())
    assert SigmaDetector(ruleset).index is SigmaDetector(ruleset).index is ruleset.index


def test_from_paths_reports(test_rules, exec_of):
    detector, report = SigmaDetector.from_paths([test_rules / "sigmahq"])
    assert len(report.loaded) == 9
    (alert,) = detector.on_event(
        exec_of("bash -c echo ZWNobyBoaQ== | base64 -d | bash", exe="/usr/bin/bash")
    )
    assert alert.rule_title == "Linux Base64 Encoded Pipe to Shell"
    assert alert.technique_ids == ("T1140",)
    assert detector.flush() == []


COMMANDS = [
    ("/usr/bin/ls", "ls -la /home/user"),
    ("/usr/bin/git", "git status"),
    ("/usr/bin/python3", "python3 /opt/app/manage.py runserver 0.0.0.0:8000"),
    ("/usr/bin/curl", "curl -s https://api.github.com/repos/x/y"),
    ("/usr/bin/grep", "grep -r TODO src/"),
    ("/usr/bin/bash", "bash -c echo ZWNobyBoaQ== | base64 -d | bash"),
    ("/usr/bin/ssh", "ssh deploy@10.0.0.5 uptime"),
    ("/usr/bin/find", "find /var/log -name *.gz -mtime +7"),
    ("/usr/bin/tar", "tar -czf /tmp/backup.tgz /etc"),
    ("/usr/bin/systemctl", "systemctl status nginx"),
]
PATHS = [
    "/etc/ld.so.cache",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/home/user/.bashrc",
    "/tmp/tmp.XyZ123",
    "/var/log/syslog",
    "/home/user/project/main.py",
    "/etc/cron.d/x",
]


def realistic_stream(count: int, exec_of):
    """A workstation-like mix: 20% execs, 35% opens/reads, 15% writes/creates, 15% connects,
    15% forks/exits; every other event carries a SYSCALL audit record."""
    events = []
    for n in range(count):
        exe, command_line = COMMANDS[n % len(COMMANDS)]
        kind, path = n % 20, PATHS[n % len(PATHS)]
        audit = {"type": "SYSCALL", "syscall": "openat", "auid": "1000"} if n % 2 else None
        if kind < 4:
            event = exec_of(command_line, exe=exe, pid=1000 + n % 300, ts=n, auditd=audit)
        else:
            if kind < 11:
                event = make_event(Action.OPEN if kind % 2 else Action.READ, exe=exe, path=path)
            elif kind < 14:
                event = make_event(Action.WRITE if kind % 2 else Action.CREATE, exe=exe, path=path)
            elif kind < 17:
                event = make_event(
                    Action.CONNECT, exe=exe, ip=f"93.184.{n % 256}.7", port=(443, 80, 4444)[n % 3]
                )
            else:
                event = make_event(Action.FORK if kind % 2 else Action.EXIT, exe=exe)
            event = msgspec.structs.replace(event, timestamp=n, auditd=audit)
        events.append(event)
    return events


@pytest.mark.shared
@pytest.mark.slow
def test_throughput_with_every_sigmahq_rule(shared_sigma, exec_of):
    detector, report = SigmaDetector.from_paths([shared_sigma])
    events = realistic_stream(20_000, exec_of)
    started = time.process_time()
    alerts = sum(len(detector.on_event(event)) for event in events)
    elapsed = time.process_time() - started
    rate = len(events) / elapsed
    print(
        f"\n{len(report.loaded)} rules, {len(events)} events, {rate:,.0f} events/s (CPU), "
        f"{alerts} alerts"
    )
    assert alerts > 0
    assert not detector.stats.rule_failures
    assert rate > 2_000  # measured ~15,000/s on the 2-core dev VM; this only catches collapse


@pytest.mark.shared
@pytest.mark.parametrize(
    ("program", "message", "title"),
    [
        (
            "sshd",
            "error: buffer_get_ret: trying to get more bytes 1907 than in buffer 308 [preauth]",
            "SSHD Error Message CVE-2018-15473",
        ),
        (
            "sudo",
            "hlvictim : PWD=/home/hlvictim ; USER=#-1 ; COMMAND=/usr/bin/id",
            "Sudo Privilege Escalation CVE-2019-14287 - Builtin",
        ),
        ("crontab", "(root) REPLACE (hlvictim)", "Modifying Crontab"),
    ],
)
def test_sigmahq_host_log_rules_fire_on_log_events_of_their_service(
    shared_sigma, program, message, title
):
    from provarmor.model.event import Host, LogRef
    from provarmor.sources.hostlog.events import build_event
    from provarmor.sources.hostlog.lines import LogLine

    detector, _ = SigmaDetector.from_paths([shared_sigma])
    line = LogLine(timestamp=1, hostname="vm", program=program, pid=7, message=message)
    event = build_event(line, host=Host(id="vm"), log=LogRef(line=1), dataset="syslog")
    assert title in {alert.rule_title for alert in detector.on_event(event)}
    other = build_event(
        msgspec.structs.replace(line, program="kernel"),
        host=Host(id="vm"),
        log=LogRef(line=2),
        dataset="syslog",
    )
    assert title not in {alert.rule_title for alert in detector.on_event(other)}
