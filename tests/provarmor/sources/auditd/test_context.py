from __future__ import annotations

import pytest

from provarmor.model.errors import ParseError
from provarmor.sources.auditd.context import EventFactory, SyscallContext
from provarmor.sources.auditd.process_table import ProcessTable
from provarmor.sources.base import HostContext, IngestReport

HOST = HostContext(id="vm1", boot_id="boot-1")


def _ctx(group, factory, table):
    fields = group.syscall.fields
    return SyscallContext(
        group=group,
        fields=fields,
        syscall="x",
        pid=int(fields["pid"]),
        state=table.lookup(int(fields["pid"]), ppid=int(fields["ppid"])),
        table=table,
        factory=factory,
        success=fields.get("success") != "no",
        result=int(fields.get("exit", "0")),
    )


@pytest.fixture
def setup(auditd_data, auditd_groups):
    groups = auditd_groups(auditd_data / "pipeline.log")
    factory = EventFactory(host=HOST, source="p.log", report=IngestReport(source="p.log"))
    table = ProcessTable(host_id="vm1", boot_id="boot-1")
    return groups, factory, table


def test_process_snapshot_is_reused_while_nothing_changes(setup):
    groups, factory, table = setup
    opens = [g for g in groups if g.syscall.fields["syscall"] == "257"][:2]

    first = factory.process(_ctx(opens[0], factory, table))
    second = factory.process(_ctx(opens[1], factory, table))

    assert first is second
    assert first.user.name == "root"
    assert first.tty == ""


def test_first_sight_takes_arguments_from_proctitle(setup):
    groups, factory, table = setup

    process = factory.process(_ctx(groups[0], factory, table))  # sh writing its login uid

    assert process.args[:2] == ("sh", "-c")
    assert process.executable == "/usr/bin/dash"


def test_arguments_and_paths(setup):
    groups, factory, table = setup
    ctx = _ctx(next(g for g in groups if g.syscall.fields["syscall"] == "257"), factory, table)

    assert ctx.arg(0) == 0xFFFFFF9C
    assert ctx.arg32(0) == -100
    assert ctx.cwd() == "/tmp"
    assert ctx.absolute("x/../y") == "/tmp/y"
    assert ctx.absolute("y", dirfd_arg=0) == "/tmp/y"  # AT_FDCWD
    ctx.state.set_fd(3, "memfd:")
    assert ctx.absolute("/proc/self/fd/3") == "memfd:"
    assert ctx.absolute(f"/proc/{ctx.pid}/fd/3") == "memfd:"
    assert ctx.absolute("/proc/self/fd/9") == "/proc/self/fd/9"
    assert ctx.absolute("/proc/1/fd/3") == "/proc/1/fd/3"


def test_bad_argument_raises_parse_error_at_the_record(setup):
    groups, factory, table = setup
    ctx = _ctx(groups[2], factory, table)

    with pytest.raises(ParseError) as info:
        ctx.arg(7)
    assert info.value.location == f"p.log:{groups[2].syscall.line}"
