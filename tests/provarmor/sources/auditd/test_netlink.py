"""The audit netlink wire formats, checked against datagrams recorded from the kernel.

The byte strings below were received on the development VM (Debian 12, kernel 6.18.44,
x86_64) with a plain ``socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT)``, unchanged:

* ``STATUS_IDLE``: the ``AUDIT_GET`` reply (request seq 7) with audit disabled, no audit pid;
* ``SET_PID_ACK``: the acknowledgement of ``AUDIT_SET pid`` (seq 8) by the recording process;
* ``ADD_RULE_EEXIST_HEAD``: the first 36 bytes of the kernel's answer to adding the same rule
  twice (seq 11): header, errno, and the start of the echoed request header;
* ``LIST_RULES_EXEC``/``LIST_RULES_DONE``: the ``AUDIT_LIST_RULES`` reply (seq 12) with only
  ProvArmor's b64 exec rule loaded, and the end of that multi-part reply;
* ``EXEC_RECORDS``: the eight records of ``/usr/bin/true captured`` sent to the audit pid's
  socket (the unicast path, whose ``nlmsg_len`` counts the payload only);
* ``STATUS_LOST``: the ``AUDIT_GET`` reply (seq 13) after bursts of execs with
  ``backlog_limit`` 8, ``backlog_wait_time`` 0 and nobody reading: 69 records lost.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import subprocess
import time
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provarmor.model.actions import Action
from provarmor.model.errors import ConfigError, ParseError
from provarmor.sources.auditd import netlink
from provarmor.sources.auditd.netlink import (
    AuditBusy,
    AuditRuleData,
    AuditSocket,
    AuditStatus,
    AuditUnavailable,
    RuleField,
)
from provarmor.sources.auditd.records import parse_netlink_record
from provarmor.sources.auditd.rules import AUDIT_RULES, AuditRule
from provarmor.sources.auditd.stream import AuditEventStream
from provarmor.sources.base import HostContext, IngestReport

STATUS_IDLE = bytes.fromhex(
    "3c000000e8030000070000000000000000000000000000000100000000000000000000004000000002000000"
    "000000007f000000983a0000c7c60000"
)

STATUS_LOST = bytes.fromhex(
    "3c000000e80300000d000000000000000000000001000000010000008c7c0000000000000800000047000000"
    "090000007f00000000000000c7c60000"
)

SET_PID_ACK = bytes.fromhex(
    "240000000200000108000000a9e8d1b5000000003c000000e90305000800000000000000"
)

ADD_RULE_EEXIST_HEAD = bytes.fromhex(
    "44040000020000000b0000008c7c0000efffffff2e040000f30305000b00000000000000"
)

LIST_RULES_EXEC = bytes.fromhex(
    "2e040000f50302000c0000000000000004000000020000000200000000000000000000080000000000000000"
    "0000000000000000000000000000000000000000000000000400000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000b000000d200000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000003e0000c00e000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000040000000400000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000e000000"
    "70726f7661726d6f725f657865630000"
)

LIST_RULES_DONE = bytes.fromhex("10000000030002000c00000000000000")

EXEC_RECORDS = (
    bytes.fromhex(
        "32010000140500000000000000000000617564697428313739353837383537302e3637373a3935393738"
        "35293a20617263683d63303030303033652073797363616c6c3d353920737563636573733d7965732065"
        "7869743d302061303d3766373861303561343739302061313d3766373861303064336337302061323d37"
        "66373861303561343763302061333d38206974656d733d3220707069643d3331383834207069643d3331"
        "38393120617569643d34323934393637323935207569643d30206769643d3020657569643d3020737569"
        "643d302066737569643d3020656769643d3020736769643d302066736769643d30207474793d286e6f6e"
        "6529207365733d3432393439363732393520636f6d6d3d227472756522206578653d222f7573722f6269"
        "6e2f7472756522206b65793d2270726f7661726d6f725f6578656322"
    ),
    bytes.fromhex(
        "b1000000290500000000000000000000617564697428313739353837383537302e3637373a3935393738"
        "35293a20667665723d302066703d302066693d302066653d30206f6c645f70703d303030303031666666"
        "65666666666666206f6c645f70693d30206f6c645f70653d30303030303166666665666666666666206f"
        "6c645f70613d302070703d303030303031666666656666666666662070693d302070653d303030303031"
        "666666656666666666662070613d302066726f6f7469643d30"
    ),
    bytes.fromhex(
        "450000001d0500000000000000000000617564697428313739353837383537302e3637373a3935393738"
        "35293a20617267633d322061303d222f7573722f62696e2f74727565222061313d226361707475726564"
        "22"
    ),
    bytes.fromhex(
        "2e0000001b0500000000000000000000617564697428313739353837383537302e3637373a3935393738"
        "35293a206377643d222f776f726b2f6d61696e22"
    ),
    bytes.fromhex(
        "ba000000160500000000000000000000617564697428313739353837383537302e3637373a3935393738"
        "35293a206974656d3d30206e616d653d222f7573722f62696e2f747275652220696e6f64653d32363039"
        "3538206465763d66653a3030206d6f64653d30313030373535206f7569643d30206f6769643d30207264"
        "65763d30303a3030206e616d65747970653d4e4f524d414c206361705f66703d30206361705f66693d30"
        "206361705f66653d30206361705f667665723d30206361705f66726f6f7469643d30"
    ),
    bytes.fromhex(
        "c8000000160500000000000000000000617564697428313739353837383537302e3637373a3935393738"
        "35293a206974656d3d31206e616d653d222f6c696236342f6c642d6c696e75782d7838362d36342e736f"
        "2e322220696e6f64653d333338393434206465763d66653a3030206d6f64653d30313030373535206f75"
        "69643d30206f6769643d3020726465763d30303a3030206e616d65747970653d4e4f524d414c20636170"
        "5f66703d30206361705f66693d30206361705f66653d30206361705f667665723d30206361705f66726f"
        "6f7469643d30"
    ),
    bytes.fromhex(
        "540000002f0500000000000000000000617564697428313739353837383537302e3637373a3935393738"
        "35293a2070726f637469746c653d32463735373337323246363236393645324637343732373536353030"
        "36333631373037343735373236353634"
    ),
    bytes.fromhex(
        "1e000000280500000000000000000000617564697428313739353837383537302e3637373a3935393738"
        "35293a20"
    ),
)


def _exec_rules(**kwargs):
    return netlink.kernel_rules([r for r in AUDIT_RULES if r.key == "provarmor_exec"], **kwargs)


def test_status_reply_of_an_idle_kernel_decodes_field_by_field():
    (message,) = netlink.parse_messages(STATUS_IDLE)

    assert (message.type, message.seq) == (netlink.AUDIT_GET, 7)
    assert netlink.parse_audit_status(message.payload) == AuditStatus(
        mask=0,
        enabled=0,
        failure=1,
        pid=0,
        rate_limit=0,
        backlog_limit=64,
        lost=2,
        backlog=0,
        feature_bitmap=0x7F,
        backlog_wait_time=15000,
        backlog_wait_time_actual=50887,
    )


def test_status_reply_after_a_loss_shows_the_lost_records_and_the_backlog():
    (message,) = netlink.parse_messages(STATUS_LOST)
    status = netlink.parse_audit_status(message.payload)

    assert (status.enabled, status.pid, status.backlog_limit) == (1, 31884, 8)
    assert (status.lost, status.backlog, status.backlog_wait_time) == (71, 9, 0)


def test_status_encodes_back_to_the_kernel_layout():
    (message,) = netlink.parse_messages(STATUS_IDLE)
    status = netlink.parse_audit_status(message.payload)

    assert netlink.encode_audit_status(status) == message.payload
    assert len(message.payload) == 44


def test_status_of_an_old_kernel_reads_missing_fields_as_zero():
    (message,) = netlink.parse_messages(STATUS_IDLE)
    status = netlink.parse_audit_status(message.payload[:32])

    assert (status.backlog_limit, status.lost, status.feature_bitmap) == (64, 2, 0)
    with pytest.raises(ParseError, match="too short"):
        netlink.parse_audit_status(message.payload[:31])


def test_acknowledgement_and_error_codes():
    (ack,) = netlink.parse_messages(SET_PID_ACK)

    assert (ack.type, ack.seq, ack.flags) == (netlink.NLMSG_ERROR, 8, 0x100)
    assert netlink.parse_error_code(ack.payload) == 0
    assert netlink.parse_error_code(ADD_RULE_EEXIST_HEAD[16:]) == errno.EEXIST
    with pytest.raises(ParseError, match="length 1092 is invalid"):
        netlink.parse_messages(ADD_RULE_EEXIST_HEAD)  # cut short: the header says 1092 bytes


def test_unicast_record_payload_is_the_rest_of_the_datagram():
    syscall = EXEC_RECORDS[0]
    (length,) = struct.unpack_from("=I", syscall)
    (message,) = netlink.parse_messages(syscall)
    text = netlink.record_text(message.payload)

    assert length == len(syscall) - netlink.HEADER_SIZE  # the kernel's unicast quirk
    assert message.type == 1300
    assert text.startswith("audit(1795878570.677:959785): arch=c000003e syscall=59 success=yes")
    assert text.endswith('comm="true" exe="/usr/bin/true" key="provarmor_exec"')


def test_recorded_exec_records_become_one_exec_event():
    report = IngestReport(source="netlink")
    stream = AuditEventStream(host=HostContext(id="vm"), report=report, source="netlink")
    events = []
    for number, datagram in enumerate(EXEC_RECORDS, 1):
        (message,) = netlink.parse_messages(datagram)
        text = netlink.record_text(message.payload)
        events += stream.push(parse_netlink_record(message.type, text, line=number))
    events += stream.close()

    (event,) = events
    assert event.event.action == Action.EXEC
    assert event.process.executable == "/usr/bin/true"
    assert event.process.args == ("/usr/bin/true", "captured")
    assert event.file is not None and event.file.path == "/usr/bin/true"
    assert report.rejected == 0


def test_exec_rule_encodes_byte_for_byte_as_the_kernel_lists_it():
    (rule,) = _exec_rules(arches=("b64",))
    reply, done = netlink.parse_messages(LIST_RULES_EXEC), netlink.parse_messages(LIST_RULES_DONE)

    assert [(m.type, m.flags, m.seq) for m in reply] == [(netlink.AUDIT_LIST_RULES, 2, 12)]
    assert [(m.type, m.flags, m.seq) for m in done] == [(netlink.NLMSG_DONE, 2, 12)]
    assert netlink.encode_rule(rule) == reply[0].payload
    assert netlink.parse_rule(reply[0].payload) == rule
    assert rule.key == "provarmor_exec"
    assert netlink.mask_syscalls(rule.mask) == [59, 322]  # execve, execveat
    assert rule.value_of(netlink.AUDIT_ARCH) == 0xC000003E


def test_kernel_rules_cover_every_rule_once_per_abi():
    both = netlink.kernel_rules(AUDIT_RULES, arches=("b64", "b32"))
    with_io = netlink.kernel_rules(AUDIT_RULES, arches=("b64",), io=True)
    arm = netlink.kernel_rules(AUDIT_RULES, arches=("b64", "b32"), host_arch="aarch64")

    assert len(both) == 2 * (len(AUDIT_RULES) - 1)  # the send/receive rule is left out
    assert [r.key for r in with_io].count("provarmor_netio") == 1
    assert {r.value_of(netlink.AUDIT_ARCH) for r in both} == {0xC000003E, 0x40000003}
    assert {r.value_of(netlink.AUDIT_ARCH) for r in arm} == {0xC00000B7}  # no 32-bit ABI
    (b32_exec,) = [r for r in both if r.key == "provarmor_exec" and r.value_of(11) == 0x40000003]
    assert netlink.mask_syscalls(b32_exec.mask) == [11, 358]
    (arm_open,) = [r for r in arm if r.key == "provarmor_open"]
    assert netlink.mask_syscalls(arm_open.mask) == [56, 437]  # openat, openat2: no open(2)


def test_mmap_rule_carries_its_argument_condition():
    (rule,) = [r for r in netlink.kernel_rules(arches=("b64",)) if r.key == "provarmor_mmap_exec"]

    assert RuleField(netlink.AUDIT_ARG0 + 2, netlink.AUDIT_BIT_MASK, 4) in rule.fields
    assert netlink.mask_syscalls(rule.mask) == [9, 10]


def test_rule_without_any_syscall_of_the_abi_is_left_out():
    rule = AuditRule(key="provarmor_x", syscalls=("fork",))

    assert netlink.kernel_rules([rule], arches=("b64",), host_arch="aarch64") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a2&0x4", RuleField(202, netlink.AUDIT_BIT_MASK, 4)),
        ("a0=3", RuleField(200, netlink.AUDIT_EQUAL, 3)),
        ("a1!=0x10", RuleField(201, netlink.AUDIT_NOT_EQUAL, 16)),
        ("a3&=8", RuleField(203, netlink.AUDIT_BIT_TEST, 8)),
        ("a0>=2", RuleField(200, netlink.AUDIT_GREATER_THAN_OR_EQUAL, 2)),
    ],
)
def test_argument_conditions_parse_to_rule_fields(text, expected):
    assert netlink.parse_condition(text) == expected


@pytest.mark.parametrize("text", ["pid=3", "a4=1", "a2&x", "a2 & 4", ""])
def test_unsupported_conditions_are_config_errors(text):
    with pytest.raises(ConfigError):
        netlink.parse_condition(text)


def test_stored_form_drops_the_prepend_flag():
    rule = AuditRuleData(
        filter=netlink.AUDIT_FILTER_EXIT | netlink.AUDIT_FILTER_PREPEND,
        action=netlink.AUDIT_NEVER,
        mask=netlink.ALL_SYSCALLS,
        fields=(RuleField(netlink.AUDIT_PID, netlink.AUDIT_EQUAL, 42),),
    )

    assert rule.stored().filter == netlink.AUDIT_FILTER_EXIT
    assert rule.stored().stored() == rule.stored()
    assert netlink.parse_rule(netlink.encode_rule(rule)) == rule


def test_rule_limits_are_enforced():
    too_many = AuditRuleData(
        filter=netlink.AUDIT_FILTER_EXIT,
        action=netlink.AUDIT_ALWAYS,
        mask=netlink.ALL_SYSCALLS,
        fields=tuple(RuleField(netlink.AUDIT_PID, netlink.AUDIT_EQUAL, n) for n in range(65)),
    )
    with pytest.raises(ValueError, match="at most 64"):
        netlink.encode_rule(too_many)
    with pytest.raises(ValueError, match="out of range"):
        netlink.syscall_mask([2032])


def test_messages_are_padded_to_four_bytes():
    data = netlink.encode_message(netlink.AUDIT_GET, b"abcde", flags=netlink.NLM_F_REQUEST, seq=3)

    assert len(data) == 24
    assert netlink.parse_messages(data) == [
        netlink.NetlinkMessage(netlink.AUDIT_GET, netlink.NLM_F_REQUEST, 3, 0, b"abcde")
    ]


@given(st.binary(max_size=1200))
@settings(max_examples=300, deadline=None)
def test_garbage_raises_only_parse_errors(data):
    for parse in (
        netlink.parse_messages,
        netlink.parse_audit_status,
        netlink.parse_rule,
        netlink.parse_error_code,
    ):
        with contextlib.suppress(ParseError):
            parse(data)


@given(st.binary(min_size=1040, max_size=1400))
@settings(max_examples=200, deadline=None)
def test_rule_shaped_garbage_raises_only_parse_errors(data):
    try:
        rule = netlink.parse_rule(data)
    except ParseError:
        return
    assert len(rule.fields) <= netlink.MAX_FIELDS


def test_missing_privilege_is_reported_with_what_to_do(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t0000000000000000\n")

    with pytest.raises(AuditUnavailable, match=r"needs root \(CAP_AUDIT_CONTROL\)"):
        netlink.check_privileges(status)
    status.write_text("CapEff:\t0000000040000000\n")
    netlink.check_privileges(status)  # bit 30 alone is enough


def test_owner_check_names_a_live_holder_and_ignores_a_dead_one():
    child = subprocess.Popen(["/bin/sleep", "30"])
    comm = Path(f"/proc/{child.pid}/comm")
    deadline = time.monotonic() + 5
    while comm.read_text() != "sleep\n" and time.monotonic() < deadline:
        time.sleep(0.01)  # Popen may return before the kernel renamed the child
    try:
        with pytest.raises(AuditBusy) as caught:
            netlink.check_owner(AuditStatus(pid=child.pid))
    finally:
        child.kill()
        child.wait()
    message = str(caught.value)
    assert f"pid {child.pid} (sleep)" in message
    assert "systemctl stop auditd" in message
    assert "--sensor ebpf" in message
    netlink.check_owner(AuditStatus(pid=child.pid))  # gone now: nothing to say
    netlink.check_owner(AuditStatus(pid=0))


def test_owner_check_recognises_this_process():
    with pytest.raises(AuditBusy, match="another AuditLiveSource runs here"):
        netlink.check_owner(AuditStatus(pid=os.getpid()))


class _RefusingSocket:
    def __init__(self, code):
        self.code = code

    def get_status(self):
        raise OSError(self.code, os.strerror(self.code))


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ECONNREFUSED, "only from the initial user namespace"),
        (errno.EPERM, "not permitted"),
        (errno.ETIMEDOUT, "timed out"),
    ],
)
def test_refused_status_requests_say_why(code, reason):
    control = cast(AuditSocket, _RefusingSocket(code))

    with pytest.raises(AuditUnavailable, match=reason):
        netlink.read_status(control)


@pytest.mark.privileged
def test_live_socket_reads_the_status_and_the_rules():
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_AUDIT_CONTROL) to query the kernel's audit")
    try:
        sock = AuditSocket()
    except OSError as exc:
        pytest.skip(f"kernel audit is not available: {exc}")
    with sock:
        status = sock.get_status()
        rules = sock.list_rules()
        with pytest.raises(OSError) as refused:
            sock.delete_rule(_exec_rules(arches=("b64",))[0].stored())

    assert status.feature_bitmap != 0
    assert status.backlog_limit > 0
    assert all(isinstance(rule, AuditRuleData) for rule in rules)
    assert refused.value.errno == errno.ENOENT  # not loaded: the kernel says so
