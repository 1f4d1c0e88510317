"""``running`` events: the order (ancestors first), the parent each names, and what a
server's event carries; then the processes really running now, read from /proc."""

from __future__ import annotations

import os

from provarmor.model.actions import Action
from provarmor.model.event import Endpoint, Event, Host, Network, ProcessRef
from provarmor.sources import procfs
from provarmor.sources.procfs import HostIdentity, ProcessInfo
from provarmor.sources.procnet import ServerRole, read_server_roles
from provarmor.sources.running import (
    RunningProcess,
    ancestors_first,
    running_event,
    running_process,
)

HOST = HostIdentity(id="h", boot_id="b")


def _info(pid: int, ppid: int, start: int, exe: str, **extra: object) -> ProcessInfo:
    return ProcessInfo(
        pid=pid,
        ppid=ppid,
        start=start,
        start_ticks=start,
        comm=exe.rsplit("/", 1)[-1],
        executable=exe,
        args=(exe,),
        **extra,  # type: ignore[arg-type]
    )


def test_each_process_comes_after_its_parent_even_an_adoptive_younger_one() -> None:
    """A daemon re-parented to a subreaper that started after it (``systemd --user``):
    the parent still comes first; a process whose parent was not read names its pid only."""
    processes = [
        _info(40, 30, 5, "/usr/bin/daemon"),  # older than its adoptive parent
        _info(30, 1, 9, "/usr/lib/systemd/systemd"),
        _info(1, 0, 1, "/sbin/init"),
        _info(50, 999, 7, "/usr/bin/orphan"),  # its parent vanished meanwhile
        _info(20, 1, 3, "/usr/sbin/sshd"),
    ]
    ordered = ancestors_first(processes, HOST)
    assert [running.info.pid for running in ordered] == [1, 20, 30, 40, 50]
    by_pid = {running.info.pid: running for running in ordered}
    assert by_pid[1].parent is None
    init = processes[2]
    assert by_pid[30].parent == ProcessRef(
        entity_id=init.entity_id(HOST), pid=1, executable="/sbin/init", command_line="/sbin/init"
    )
    assert by_pid[50].parent == ProcessRef(entity_id="", pid=999)
    assert by_pid[40].entity_id == processes[0].entity_id(HOST)


def test_a_servers_event_names_where_it_listens_and_whom_it_accepted() -> None:
    server = _info(20, 1, 3, "/usr/sbin/sshd", tty="", uid=0, euid=0, egid=0, cwd="/")
    roles = {
        20: (
            ServerRole("tcp", listening=Endpoint(ip="0.0.0.0", port=22)),
            ServerRole("tcp", accepted=Endpoint(ip="192.0.2.7", port=40000)),
        )
    }
    (running,) = ancestors_first([server], HOST, roles)
    event = _event_of(running, sequence=1)
    assert event.event.action is Action.RUNNING
    assert event.source == Endpoint(ip="0.0.0.0", port=22)
    assert event.destination == Endpoint(ip="192.0.2.7", port=40000)
    assert event.network == Network(transport="tcp", direction="ingress")
    assert (event.process.name, event.process.working_directory) == ("sshd", "/")
    assert event.process.user is not None and event.process.user.id == "0"
    (sleeper,) = ancestors_first([_info(30, 1, 4, "/usr/bin/sleep")], HOST, roles)
    plain = _event_of(sleeper, sequence=2)
    assert (plain.source, plain.destination, plain.network) == (None, None, None)


def _event_of(running: RunningProcess, *, sequence: int) -> Event:
    return running_event(
        running,
        process=running_process(running),
        host=Host(id="h"),
        timestamp=10,
        event_id=f"r-{sequence}",
        sequence=sequence,
        dataset="ebpf",
    )


def test_the_processes_running_now_in_order_with_this_one_under_its_parent() -> None:
    clock = procfs.read_clock()
    host = procfs.read_host_identity()
    processes = list(procfs.iter_processes(clock=clock))
    ordered = ancestors_first(processes, host, read_server_roles(p.pid for p in processes))
    position = {running.info.pid: index for index, running in enumerate(ordered)}
    assert len(position) == len(processes)
    for running in ordered:
        if running.parent is not None and running.parent.entity_id:
            assert position[running.parent.pid] < position[running.info.pid]
    own = ordered[position[os.getpid()]]
    assert own.parent is not None and own.parent.pid == os.getppid()
