"""The live audit source against the real kernel: real commands in, exact events out, and the
kernel's audit state exactly as it was afterwards.

Every test that touches the kernel is marked ``privileged`` and skips, saying why, without
root or kernel audit, or when another process (auditd) receives the audit records. A module
fixture puts back whatever a failed test might have left (rules, settings, audit pid).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from provarmor.model.actions import Action
from provarmor.model.event import Event, Network
from provarmor.sources.auditd import netlink
from provarmor.sources.auditd.importer import read_auditd
from provarmor.sources.auditd.live import (
    SELF_KEY,
    AuditBusy,
    AuditLiveSettings,
    AuditLiveSource,
    ProcessSeed,
    exclusion_rule,
)
from provarmor.sources.auditd.netlink import AuditSocket, AuditStatus
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.owngroup import OWN_GROUP, cgroup2_root

HOST = HostContext(id="live-test", name="vm", boot_id="boot-test")
AGENT = "agent-entity"
"""Entity id the tests seed for this (the agent's) process."""
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/root"}
PIPELINE = "cat /etc/hostname | wc -c"
FILE_OPS = "cp /etc/hostname a.txt && chmod 600 a.txt && mv a.txt b.txt && rm b.txt"
CONNECT = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1]))).close()"
PYTHON = "/usr/bin/python3"
ON_A_TERMINAL = "sh -c tty provarmor-on-a-terminal"
OWN_SCENARIO = (
    "echo $$ > {own}/cgroup.procs && head -c1 /etc/hostname > /dev/null"
    " && echo $$ > {other}/cgroup.procs && exec tail -c1 /etc/hostname > /dev/null"
)
"""A shell that moves itself into ProvArmor's cgroup, runs a child, moves into another group
(as a lab jail does) and execs."""
SRC = str(Path(__file__).resolve().parents[4] / "src")

# -- kernel state -------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelState:
    """What the tests promise to leave as they found it."""

    pid: int
    enabled: int
    backlog_limit: int
    backlog_wait_time: int
    rate_limit: int
    rules: tuple[netlink.AuditRuleData, ...]
    listing: str
    """``auditctl -l`` ("" when auditctl is not installed)."""


def kernel_state() -> KernelState:
    with AuditSocket() as sock:
        status = sock.get_status()
        rules = tuple(sock.list_rules())
    return KernelState(
        pid=status.pid,
        enabled=status.enabled,
        backlog_limit=status.backlog_limit,
        backlog_wait_time=status.backlog_wait_time,
        rate_limit=status.rate_limit,
        rules=rules,
        listing=auditctl_listing(),
    )


def auditctl_listing() -> str:
    if shutil.which("auditctl") is None:
        return ""
    return subprocess.run(["auditctl", "-l"], capture_output=True, text=True, check=True).stdout


def restore(state: KernelState) -> None:
    """Put the kernel back to ``state``: settings, no audit pid, none of our rules."""
    with AuditSocket() as sock:
        for rule in sock.list_rules():
            if rule.key.startswith("provarmor") and rule not in state.rules:
                sock.delete_rule(rule)
        mask = (
            netlink.AUDIT_STATUS_ENABLED
            | netlink.AUDIT_STATUS_BACKLOG_LIMIT
            | netlink.AUDIT_STATUS_BACKLOG_WAIT_TIME
            | netlink.AUDIT_STATUS_RATE_LIMIT
            | netlink.AUDIT_STATUS_PID
        )
        sock.set_status(
            AuditStatus(
                mask=mask,
                enabled=state.enabled,
                pid=0,
                backlog_limit=state.backlog_limit,
                backlog_wait_time=state.backlog_wait_time,
                rate_limit=state.rate_limit,
            )
        )


@pytest.fixture(scope="module")
def initial_state():
    """The kernel's audit state before this module ran; restored at the end whatever
    happened. Skips when the kernel's audit cannot be owned here."""
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_AUDIT_CONTROL) to own the kernel's audit")
    try:
        state = kernel_state()
    except OSError as exc:
        pytest.skip(f"kernel audit is not available: {exc}")
    if state.pid and Path(f"/proc/{state.pid}").exists():
        pytest.skip(f"pid {state.pid} already receives the kernel's audit records (auditd?)")
    yield state
    if kernel_state() != state:
        restore(state)


def source(**kwargs) -> AuditLiveSource:
    seeds = [ProcessSeed(pid=os.getpid(), entity_id=AGENT, executable=sys.executable)]
    return AuditLiveSource(HOST, seeds=seeds, **kwargs)


# -- events -------------------------------------------------------------------------------


def only(events: list[Event], action: Action, **where) -> Event:
    """The one event of ``action`` matching every ``where`` test (field -> value or predicate)."""
    found = [e for e in events if e.event.action == action and _matches(e, where)]
    assert len(found) == 1, f"{len(found)} {action} events match {where}"
    return found[0]


def _matches(event: Event, where: dict[str, object]) -> bool:
    for name, wanted in where.items():
        value = field(event, name)
        if callable(wanted) and not wanted(value):
            return False
        if not callable(wanted) and value != wanted:
            return False
    return True


def field(event: Event, name: str) -> object:
    """``event.<name>`` along a dotted path; None where a part is missing."""
    value: object = event
    for part in name.split("."):
        value = getattr(value, part, None)
    return value


def exec_of(events: list[Event], *args: str) -> Event:
    return only(events, Action.EXEC, **{"process.args": args, "event.outcome": "success"})


# -- one source, four scenarios -----------------------------------------------------------


@dataclass
class Run:
    events: list[Event]
    before: KernelState
    during: KernelState
    after: KernelState
    source: AuditLiveSource
    tmp: str
    http_port: int
    http_server_pid: int
    tcp_port: int
    tapped: list[bytes]
    terminal: str
    """What ``tty`` printed on the pseudo-terminal ``script`` gave it (``/dev/pts/N``)."""
    own_scenario: str
    """:data:`OWN_SCENARIO` as run ("" without a cgroup v2 hierarchy)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_http_server(directory: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    command = [PYTHON, "-I", "-S", "-m", "http.server", str(port)]
    server = subprocess.Popen(
        [*command, "--bind", "127.0.0.1", "--directory", directory],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("the test HTTP server did not start")


def _sh(script: str, **kwargs) -> None:
    subprocess.run(["/bin/sh", "-c", script], env=ENV, check=True, **kwargs)


@pytest.fixture(scope="module")
def run(initial_state) -> Run:
    """Start one source, run the four scenarios, stop it; everything the tests look at."""
    www = tempfile.mkdtemp(prefix="pa-live-www-")
    Path(www, "index.html").write_text("hello\n")
    tmp = os.path.realpath(tempfile.mkdtemp(prefix="pa-live-files-"))
    server, http_port = _start_http_server(www)
    listener = socket.create_server(("127.0.0.1", 0))
    tcp_port = listener.getsockname()[1]
    tapped: list[bytes] = []
    live = source(tap=tapped.append)
    try:
        live.start()
        during = kernel_state()
        _sh(PIPELINE, stdout=subprocess.DEVNULL)
        _sh(f"curl -s -o /dev/null http://127.0.0.1:{http_port}/index.html; true")
        _sh(FILE_OPS, cwd=tmp)
        subprocess.run([PYTHON, "-I", "-S", "-c", CONNECT, str(tcp_port)], env=ENV, check=True)
        listener.accept()[0].close()
        terminal = subprocess.run(
            ["script", "-qec", ON_A_TERMINAL, "/dev/null"],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        own_scenario = _run_own_scenario()
    finally:
        live.stop()
        server.kill()
        server.wait()
        listener.close()
    events = list(live.events())
    shutil.rmtree(www)
    shutil.rmtree(tmp)
    return Run(
        events=events,
        before=initial_state,
        during=during,
        after=kernel_state(),
        source=live,
        tmp=tmp,
        http_port=http_port,
        http_server_pid=server.pid,
        tcp_port=tcp_port,
        tapped=tapped,
        terminal=terminal,
        own_scenario=own_scenario,
    )


def _run_own_scenario() -> str:
    """:data:`OWN_SCENARIO` between ProvArmor's cgroup and a group of its own, removed after."""
    root = cgroup2_root()
    if root is None:
        return ""
    own = root / OWN_GROUP
    own.mkdir(exist_ok=True)
    other = Path(tempfile.mkdtemp(prefix="pa-live-jail-", dir=root))
    script = OWN_SCENARIO.format(own=own, other=other)
    try:
        _sh(script)
    finally:
        other.rmdir()  # empty: the shell has exited
    return script


@pytest.mark.privileged
def test_shell_pipeline_has_exact_lineage(run):
    sh = exec_of(run.events, "/bin/sh", "-c", PIPELINE)
    cat = exec_of(run.events, "cat", "/etc/hostname")
    wc = exec_of(run.events, "wc", "-c")
    shell = sh.process.entity_id
    forks = [
        e
        for e in run.events
        if e.event.action == Action.FORK and field(e, "process.parent.entity_id") == shell
    ]

    assert sh.process.executable == os.path.realpath("/bin/sh")
    assert field(sh, "process.parent.entity_id") == AGENT  # the seeded test process ran it
    assert {f.process.entity_id for f in forks} == {cat.process.entity_id, wc.process.entity_id}
    assert (cat.process.executable, wc.process.executable) == ("/usr/bin/cat", "/usr/bin/wc")
    assert field(cat, "process.parent.entity_id") == shell
    assert field(wc, "process.parent.entity_id") == shell
    only(
        run.events,
        Action.OPEN,
        **{"file.path": "/etc/hostname", "process.entity_id": cat.process.entity_id},
    )
    for process in (cat, wc, sh):
        only(run.events, Action.EXIT, **{"process.entity_id": process.process.entity_id})


@pytest.mark.privileged
def test_a_process_on_a_terminal_names_it_as_the_ebpf_sensor_does(run):
    """audit's ``tty=pts3`` is the kernel's name of ``/dev/pts/3``, as eBPF's ``I`` record."""
    shell = exec_of(run.events, "sh", "-c", "tty", "provarmor-on-a-terminal")
    on_terminal = exec_of(run.events, "tty")
    assert run.terminal.startswith("/dev/pts/")
    assert on_terminal.process.tty == "pts" + run.terminal.removeprefix("/dev/pts/")
    assert shell.process.tty == on_terminal.process.tty


@pytest.mark.privileged
def test_processes_in_provarmors_cgroup_are_marked_until_they_leave_it(run):
    """Marked at the source like the eBPF sensor's: from the shell's own move into the group
    (its write to ``cgroup.procs``), inherited by the child it forks there, and cleared by
    its move out, whatever the programs are."""
    if not run.own_scenario:
        pytest.skip("needs a cgroup v2 hierarchy")
    shell = exec_of(run.events, "/bin/sh", "-c", run.own_scenario)
    inside = exec_of(run.events, "head", "-c1", "/etc/hostname")
    after = exec_of(run.events, "tail", "-c1", "/etc/hostname")
    assert not shell.process.provarmor  # it execs before it moves
    assert inside.process.provarmor
    opened = only(
        run.events,
        Action.OPEN,
        **{"process.entity_id": inside.process.entity_id, "file.path": "/etc/hostname"},
    )
    assert opened.process.provarmor
    assert after.process.entity_id == shell.process.entity_id and not after.process.provarmor
    others = (exec_of(run.events, "cat", "/etc/hostname"), exec_of(run.events, "tty"))
    assert not any(event.process.provarmor for event in others)


@pytest.mark.privileged
def test_curl_exec_and_connect_to_the_loopback_server(run):
    url = f"http://127.0.0.1:{run.http_port}/index.html"
    sh = exec_of(run.events, "/bin/sh", "-c", f"curl -s -o /dev/null {url}; true")
    curl = exec_of(run.events, "curl", "-s", "-o", "/dev/null", url)
    connect = only(
        run.events,
        Action.CONNECT,
        **{"process.entity_id": curl.process.entity_id, "destination.ip": "127.0.0.1"},
    )
    accept = only(run.events, Action.ACCEPT, **{"process.pid": run.http_server_pid})

    assert curl.process.executable == "/usr/bin/curl"
    assert field(curl, "file.path") == "/usr/bin/curl"
    assert field(curl, "process.parent.entity_id") == sh.process.entity_id
    assert field(connect, "destination.port") == run.http_port
    assert connect.network == Network(transport="tcp", direction="egress")
    assert connect.event.outcome in ("success", "unknown")  # curl connects non-blocking
    assert field(accept, "destination.ip") == "127.0.0.1"
    assert accept.network == Network(transport="tcp", direction="ingress")


@pytest.mark.privileged
def test_file_operations_name_paths_modes_and_renames(run):
    sh = exec_of(run.events, "/bin/sh", "-c", FILE_OPS).process.entity_id
    cp = exec_of(run.events, "cp", "/etc/hostname", "a.txt")
    chmod_exec = exec_of(run.events, "chmod", "600", "a.txt")
    mv = exec_of(run.events, "mv", "a.txt", "b.txt")
    rm = exec_of(run.events, "rm", "b.txt")
    a_txt, b_txt = f"{run.tmp}/a.txt", f"{run.tmp}/b.txt"

    create = only(run.events, Action.CREATE, **{"file.path": a_txt})
    chmod = only(run.events, Action.CHMOD, **{"file.path": a_txt})
    rename = only(run.events, Action.RENAME, **{"file.path": b_txt})
    delete = only(run.events, Action.DELETE, **{"file.path": b_txt})

    assert {field(e, "process.parent.entity_id") for e in (cp, chmod_exec, mv, rm)} == {sh}
    assert create.process.entity_id == cp.process.entity_id
    assert chmod.process.entity_id == chmod_exec.process.entity_id
    assert field(chmod, "file.mode") == 0o600
    assert field(rename, "file.original_path") == a_txt
    assert rename.process.entity_id == mv.process.entity_id
    assert delete.process.entity_id == rm.process.entity_id
    assert create.timestamp <= chmod.timestamp <= rename.timestamp <= delete.timestamp


@pytest.mark.privileged
def test_python_connect_names_the_destination(run):
    python = exec_of(run.events, PYTHON, "-I", "-S", "-c", CONNECT, str(run.tcp_port))
    connect = only(
        run.events,
        Action.CONNECT,
        **{"process.entity_id": python.process.entity_id, "destination.ip": "127.0.0.1"},
    )

    assert python.process.executable == os.path.realpath(PYTHON)
    assert field(python, "process.parent.entity_id") == AGENT
    assert field(connect, "destination.port") == run.tcp_port
    assert connect.event.outcome == "success"
    assert connect.network == Network(transport="tcp", direction="egress")


@pytest.mark.privileged
def test_the_agent_never_audits_itself(run):
    assert not [e for e in run.events if e.process.pid == os.getpid()]
    counters = run.source.counters
    assert counters.records > counters.events > 0
    assert (counters.parse_errors, counters.kernel_lost, counters.gaps) == (0, 0, 0)


@pytest.mark.privileged
def test_tap_sees_every_record_as_an_audit_log_line_the_importer_reads(run, tmp_path):
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(line + b"\n" for line in run.tapped))
    report = IngestReport(source=str(log))
    imported = list(read_auditd(log, report=report, host=HOST))

    def execs(events):
        return sorted(e.process.args for e in events if e.event.action == Action.EXEC)

    assert len(run.tapped) == run.source.counters.records
    assert report.rejected == 0
    assert execs(imported) == execs(run.events)
    cat_argv = b'argc=2 a0="cat" a1="/etc/hostname"'
    execve = [line for line in run.tapped if line.startswith(b"type=EXECVE msg=audit(")]
    assert sum(line.endswith(cat_argv) for line in execve) == 1


@pytest.mark.privileged
def test_rules_while_running_are_what_auditctl_would_load(run):
    added = run.source.installed_rules  # empty after stop
    ours = [rule for rule in run.during.rules if rule not in run.before.rules]

    assert added == ()
    assert ours[0] == exclusion_rule(os.getpid()).stored()
    assert [rule.key for rule in ours].count("provarmor_exec") == 2  # b64 and b32
    assert run.during.pid == os.getpid()
    assert run.during.enabled == 1
    assert run.during.backlog_limit == AuditLiveSettings().backlog_limit
    if run.during.listing:
        lines = run.during.listing.splitlines()
        assert f"-a never,exit -S all -F pid={os.getpid()} -F key={SELF_KEY}" in lines
        assert "-a always,exit -F arch=b64 -S execve,execveat -F key=provarmor_exec" in lines
        assert (
            "-a always,exit -F arch=b64 -S mmap,mprotect -F a2&0x4 -F key=provarmor_mmap_exec"
            in lines
        )


@pytest.mark.privileged
def test_stop_leaves_the_kernel_as_it_was(run):
    assert run.after == run.before
    run.source.stop()  # a second stop changes nothing
    assert kernel_state() == run.before


# -- who else holds the audit pid ---------------------------------------------------------

CLAIM = r"""
import os, socket, struct, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
s.bind((0, 0))
def set_pid(pid):
    status = struct.pack("=11I", 4, 0, 0, pid, 0, 0, 0, 0, 0, 0, 0)
    s.sendto(struct.pack("=IHHII", 16 + len(status), 1001, 5, 1, 0) + status, (0, 0))
    while True:
        reply = s.recv(8192)
        if struct.unpack_from("=H", reply, 4)[0] == 2:
            assert struct.unpack_from("=i", reply, 16)[0] == 0
            return
set_pid(os.getpid())
print("ready", flush=True)
sys.stdin.read()
set_pid(0)
"""


@pytest.mark.privileged
def test_another_process_holding_the_audit_pid_is_named(initial_state):
    claimant = subprocess.Popen(
        [PYTHON, "-I", "-S", "-c", CLAIM], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert claimant.stdout is not None and claimant.stdout.readline() == "ready\n"
        live = source()
        with pytest.raises(AuditBusy) as caught:
            live.start()
        live.stop()
    finally:
        claimant.communicate("", timeout=10)
    message = str(caught.value)
    assert f"pid {claimant.pid} (python3)" in message
    assert "systemctl stop auditd" in message
    assert "--sensor ebpf" in message
    assert live.installed_rules == ()
    assert kernel_state() == initial_state


@pytest.mark.privileged
def test_a_second_source_in_the_same_process_is_refused(initial_state):
    first = source()
    first.start()
    try:
        second = source()
        with pytest.raises(AuditBusy, match=f"pid {os.getpid()} .*another AuditLiveSource"):
            second.start()
        second.stop()
        assert kernel_state().pid == os.getpid()  # the first still owns it
        assert len(first.installed_rules) > 0
    finally:
        first.stop()
    assert kernel_state() == initial_state


# -- losses -------------------------------------------------------------------------------

BURST = "import os\nfor _ in range(4000):\n    os.close(os.open('/etc/hostname', os.O_RDONLY))"


@pytest.mark.privileged
def test_kernel_loss_becomes_a_counted_gap_event(initial_state):
    with AuditSocket() as sock:
        lost_before = sock.get_status().lost
    settings = AuditLiveSettings(
        backlog_wait_time=0,
        queue_events=32,
        receive_buffer=4096,
        status_interval_s=0.1,
        read_linger_s=0.0,
    )
    live = source(backlog_limit=4, settings=settings)
    live.start()
    try:
        # nobody polls: the reader stops at 32 events, the socket and the backlog fill up
        subprocess.run([PYTHON, "-I", "-S", "-c", BURST], env=ENV, check=True)
        time.sleep(3 * settings.status_interval_s)  # the status thread notices the loss
    finally:
        started = time.monotonic()
        live.stop()  # with the reader still waiting for a consumer that never came
        stopping_took = time.monotonic() - started
    events = list(live.events())
    with AuditSocket() as sock:
        lost_after = sock.get_status().lost
    gaps = [e for e in events if e.event.action == Action.GAP]
    lost = [g for g in gaps if g.auditd == {"type": "GAP", "reason": "kernel_lost"}]
    overruns = [g for g in gaps if g.auditd == {"type": "GAP", "reason": "socket_overrun"}]
    opens = [
        e
        for e in events
        if e.event.action == Action.OPEN and field(e, "file.path") == "/etc/hostname"
    ]

    assert stopping_took < 5
    assert live.counters.kernel_lost > 0
    assert sum(g.event.count for g in lost) == live.counters.kernel_lost == lost_after - lost_before
    assert len(overruns) == live.counters.overruns  # the kernel retries these: count unknown
    assert {g.event.count for g in overruns} <= {0}
    assert live.counters.gaps == len(gaps) == len(lost) + len(overruns)
    for gap in gaps:
        assert (gap.process.entity_id, gap.host.id, gap.event.dataset) == ("", HOST.id, "auditd")
        assert gap.event.outcome == "unknown"
    assert 0 < len(opens) < 4000
    assert kernel_state() == initial_state  # backlog limit and wait time restored
    if lost_before == 0 and shutil.which("auditctl"):  # leave the counter as it was found
        subprocess.run(["auditctl", "--reset-lost"], capture_output=True, check=True)


# -- lifecycle: exit without stop, a signal handler, a crash --------------------------------

CHILD = r"""
import os, signal, sys, time
sys.path.insert(0, {src!r})
from provarmor.sources.auditd.live import AuditLiveSource
from provarmor.sources.auditd.importer import read_auditd
from provarmor.sources.base import HostContext, IngestReport
live = AuditLiveSource(HostContext(id="child"))
mode = sys.argv[1]
if mode == "signal":
    def on_term(signum, frame):
        live.stop()
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
live.start()
print("ready", flush=True)
if mode == "exit":
    sys.exit(0)
time.sleep(30)
"""


def _child(mode: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(src=SRC), mode], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


@pytest.mark.privileged
def test_exit_without_stop_is_cleaned_up_at_exit(initial_state):
    with _child("exit") as child:
        assert child.wait(timeout=20) == 0
    assert kernel_state() == initial_state


@pytest.mark.privileged
def test_stop_from_a_signal_handler(initial_state):
    with _child("signal") as child:
        assert kernel_state().pid == child.pid
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=20) == 0
    assert kernel_state() == initial_state


@pytest.mark.privileged
def test_rules_of_a_killed_agent_are_removed_by_the_next_one(initial_state):
    with _child("sleep") as child:
        child.kill()
    left = kernel_state()
    stale = exclusion_rule(child.pid).stored()
    assert stale in left.rules  # SIGKILL: nothing ran

    live = source()
    try:
        live.start()
        running = kernel_state()
    finally:
        live.stop()
        after = kernel_state()
        restore(initial_state)  # the dead agent's enabled flag and backlog limit stay set

    assert stale not in running.rules
    assert len(running.rules) == len(initial_state.rules) + len(live_rules())
    assert after.rules == initial_state.rules
    assert kernel_state() == initial_state


def live_rules() -> list[netlink.AuditRuleData]:
    """Every rule a source with default settings installs for this process."""
    own = [exclusion_rule(os.getpid()).stored()]
    return own + netlink.kernel_rules(arches=AuditLiveSettings().arches)


# -- without the kernel -------------------------------------------------------------------


def test_exclusion_rule_is_a_prepended_never_rule_for_every_syscall():
    rule = exclusion_rule(1234)

    assert rule.filter == netlink.AUDIT_FILTER_EXIT | netlink.AUDIT_FILTER_PREPEND
    assert rule.action == netlink.AUDIT_NEVER
    assert rule.mask == netlink.ALL_SYSCALLS
    assert rule.value_of(netlink.AUDIT_PID) == 1234
    assert rule.key == SELF_KEY


def test_a_source_never_started_yields_nothing_and_stops_quietly():
    live = AuditLiveSource(HOST, exclude_pids=[1, 1], backlog_limit=99)

    assert live.exclude_pids == (os.getpid(), 1)
    assert live.settings.backlog_limit == 99
    assert list(live.events()) == []
    live.stop()
    live.stop()
    with pytest.raises(RuntimeError, match="once"):
        live.start()
