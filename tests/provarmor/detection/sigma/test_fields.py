"""Log source mapping and Sigma field getters over canonical events."""

from __future__ import annotations

import msgspec
import pytest

from provarmor.detection.sigma.fields import (
    EVENT_FIELDS,
    RecordKind,
    UnsupportedLogSource,
    auditd_field_known,
    keyword_text,
    map_logsource,
)
from provarmor.model.actions import LOG_ACTIONS, Action
from provarmor.model.event import Account, Endpoint, File, ProcessRef, Target, User
from provarmor.testing.factories import make_event


@pytest.mark.parametrize(
    ("category", "actions"),
    [
        ("process_creation", {Action.EXEC}),
        ("file_event", {Action.CREATE, Action.WRITE, Action.RENAME}),
        ("file_create", {Action.CREATE, Action.WRITE, Action.RENAME}),
        ("file_delete", {Action.DELETE}),
        ("file_rename", {Action.RENAME}),
        ("file_change", {Action.WRITE, Action.TRUNCATE, Action.CHMOD, Action.CHOWN}),
        ("network_connection", {Action.CONNECT, Action.ACCEPT}),
        ("file_access", {Action.OPEN, Action.READ}),
        ("process_access", {Action.PTRACE}),
        ("driver_load", {Action.MODULE_LOAD}),
        ("image_load", {Action.MMAP_EXEC}),
    ],
)
def test_categories_map_onto_actions(category, actions):
    source = map_logsource(product="linux", category=category, service=None)
    assert source.kind is RecordKind.EVENT
    assert source.actions == actions


def test_auditd_service_and_product_only():
    auditd = map_logsource(product="linux", category=None, service="auditd")
    assert (auditd.kind, auditd.actions) == (RecordKind.AUDITD, None)
    generic = map_logsource(product="linux", category=None, service=None)
    assert (generic.kind, generic.actions) == (RecordKind.EVENT, None)


@pytest.mark.parametrize(
    ("product", "category", "service", "reason"),
    [
        ("linux", None, "apache", "service 'apache'"),
        ("linux", "process_creation", "sshd", "service 'sshd'"),
        ("linux", "dns", None, "category 'dns'"),
        ("linux", "proxy", None, "category 'proxy'"),
        ("windows", "process_creation", None, "product 'windows'"),
        (None, None, None, "names no product"),
    ],
)
def test_other_log_sources_are_unsupported_with_a_reason(product, category, service, reason):
    with pytest.raises(UnsupportedLogSource, match=reason):
        map_logsource(product=product, category=category, service=service)


def field(name, event):
    return EVENT_FIELDS[name.lower()](event)


def test_process_fields():
    event = make_event(Action.EXEC, pid=42, exe="/usr/bin/curl", args=("curl", "-s", "x"), ppid=41)
    assert field("Image", event) == "/usr/bin/curl"
    assert field("CommandLine", event) == "curl -s x"  # joined args when no command line
    assert field("ProcessId", event) == "42"
    assert field("ParentProcessId", event) == "41"
    assert field("ProcessGuid", event) == "test-host-p42"
    assert field("ParentImage", event) is None  # unknown is absent, not ""
    assert field("User", event) is None
    process = msgspec.structs.replace(
        event.process,
        command_line="curl  -s x",
        user=User(id="1000", name="alice"),
        working_directory="/home/alice",
    )
    event = msgspec.structs.replace(event, process=process, auditd={"auid": "1000"})
    assert field("CommandLine", event) == "curl  -s x"
    assert field("User", event) == "alice"
    assert field("CurrentDirectory", event) == "/home/alice"
    assert field("LogonId", event) == "1000"


def test_user_falls_back_to_id_and_knows_root():
    event = make_event(Action.EXEC)
    for user, expected in ((User(id="0"), "root"), (User(id="1000"), "1000")):
        process = msgspec.structs.replace(event.process, user=user)
        assert field("User", msgspec.structs.replace(event, process=process)) == expected


def test_file_fields_for_rename():
    event = make_event(Action.RENAME, path="/etc/cron.d/x", original_path="/tmp/x")
    assert field("TargetFilename", event) == "/etc/cron.d/x"
    assert field("SourceFilename", event) == "/tmp/x"


def test_network_fields():
    outbound = make_event(Action.CONNECT, ip="203.0.113.5", port=4444)
    outbound = msgspec.structs.replace(
        outbound,
        source=Endpoint(ip="192.0.2.10", port=51000),
        destination=Endpoint(ip="203.0.113.5", port=4444, domain="evil.example"),
    )
    assert field("DestinationIp", outbound) == "203.0.113.5"
    assert field("DestinationPort", outbound) == "4444"
    assert field("DestinationHostname", outbound) == "evil.example"
    assert field("SourceIp", outbound) == "192.0.2.10"
    assert field("SourcePort", outbound) == "51000"
    assert field("Initiated", outbound) == "true"
    assert field("Protocol", outbound) == "tcp"
    inbound = make_event(Action.ACCEPT, ip="203.0.113.5", port=22)
    assert field("Initiated", inbound) == "false"
    undirected = msgspec.structs.replace(inbound, network=None)
    assert field("Initiated", undirected) == "false"  # from the action
    assert field("Initiated", msgspec.structs.replace(outbound, network=None)) == "true"
    assert field("Initiated", make_event(Action.BIND)) is None


def test_auditd_field_names():
    assert all(auditd_field_known(name) for name in ("type", "syscall", "a0", "a12", "a1[3]"))
    assert not auditd_field_known("commandline")


def test_keyword_text_is_what_the_event_newly_says():
    exec_event = make_event(Action.EXEC, exe="/bin/sh", args=("sh", "-c", "id"))
    assert keyword_text(exec_event) == ("sh -c id", "/bin/sh")
    rename = make_event(Action.RENAME, path="/b", original_path="/a")
    assert keyword_text(rename) == ("/b", "/a")
    assert keyword_text(make_event(Action.OPEN, path="/etc/ld.so.preload")) == ()
    connect = make_event(Action.CONNECT, ip="203.0.113.5", port=1)
    connect = msgspec.structs.replace(connect, destination=Endpoint(domain="x.example"))
    assert keyword_text(connect) == ("x.example",)
    assert keyword_text(make_event(Action.WRITE, path="/tmp/x")) == ("/tmp/x",)
    assert keyword_text(
        msgspec.structs.replace(make_event(Action.DELETE), file=File(path="/var/log/syslog"))
    ) == ("/var/log/syslog",)


@pytest.mark.parametrize(
    ("category", "known", "unknown"),
    [
        ("file_access", {"targetfilename", "image", "filemode"}, {"targetimage", "imageloaded"}),
        ("process_access", {"sourceimage", "targetimage", "targetprocessid"}, {"targetfilename"}),
        ("driver_load", {"imageloaded", "image"}, {"targetimage"}),
        ("image_load", {"imageloaded", "image"}, {"destinationip"}),
    ],
)
def test_sysmon_style_categories_know_their_fields(category, known, unknown):
    source = map_logsource(product="linux", category=category, service=None)
    assert known <= source.fields
    assert not unknown & source.fields


def test_file_mode_is_four_octal_digits():
    chmod = msgspec.structs.replace(make_event(Action.CHMOD), file=File(path="/tmp/x", mode=0o4755))
    assert field("FileMode", chmod) == "4755"
    plain = msgspec.structs.replace(chmod, file=File(path="/tmp/x", mode=0o644))
    assert field("FileMode", plain) == "0644"
    assert field("FileMode", make_event(Action.WRITE, path="/tmp/x")) is None


def test_loaded_image_and_ptrace_target_fields():
    mapped = make_event(Action.MMAP_EXEC, path="/tmp/libx.so", exe="/usr/bin/python3")
    assert field("ImageLoaded", mapped) == "/tmp/libx.so"
    module = make_event(Action.MODULE_LOAD, path="init_module:4096")
    assert field("ImageLoaded", module) == "init_module:4096"
    traced = make_event(Action.PTRACE, pid=7, exe="/usr/bin/python3")
    assert field("TargetImage", traced) is None
    assert field("TargetProcessId", traced) is None
    traced = msgspec.structs.replace(
        traced,
        target=Target(
            process=ProcessRef(entity_id="test-host-p9", pid=9, executable="/usr/sbin/sshd")
        ),
    )
    assert field("SourceImage", traced) == "/usr/bin/python3"
    assert field("SourceProcessId", traced) == "7"
    assert field("SourceProcessGuid", traced) == "test-host-p7"
    assert field("TargetImage", traced) == "/usr/sbin/sshd"
    assert field("TargetProcessId", traced) == "9"
    assert field("TargetProcessGuid", traced) == "test-host-p9"


@pytest.mark.parametrize(
    ("service", "programs"),
    [
        ("sshd", {"sshd"}),
        ("sudo", {"sudo"}),
        ("cron", {"cron", "crond", "crontab", "anacron"}),
        ("auth", None),
        ("syslog", None),
    ],
)
def test_host_log_services_mean_the_log_events_of_their_programs(service, programs):
    source = map_logsource(product="linux", category=None, service=service)
    assert (source.kind, source.actions) == (RecordKind.EVENT, LOG_ACTIONS)
    assert source.programs == (None if programs is None else frozenset(programs))
    assert {"user.name", "source.ip", "event.outcome", "user"} <= source.fields


def test_host_log_fields_and_keyword_text():
    event = msgspec.structs.replace(
        make_event(Action.RUN_AS, pid=7, exe=""),
        user=Account(name="hladmin", target=User(id="0", name="root")),
        message="hladmin : PWD=/tmp ; USER=root ; COMMAND=/usr/bin/id",
    )
    event = msgspec.structs.replace(
        event, process=msgspec.structs.replace(event.process, name="sudo", user=None)
    )
    assert field("process.name", event) == "sudo"
    assert field("event.action", event) == "run_as"
    assert (field("user.name", event), field("user.target.name", event)) == ("hladmin", "root")
    assert field("user.target.id", event) == "0"
    assert field("User", event) == "root"  # sudo's USER=, as SigmaHQ's sudo rules read it
    assert keyword_text(event) == (event.message,)
