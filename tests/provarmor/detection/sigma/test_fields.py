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
from provarmor.model.actions import Action
from provarmor.model.event import Endpoint, File, User
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
        ("linux", None, "sshd", "service 'sshd'"),
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
