"""Live tests of the eBPF source: real bpftrace, real commands, exact events.

One source is started for the whole module (bpftrace needs ~7 s to compile and attach), the
scenarios run while it records, and each test then checks its part of the capture.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.sources.ebpf.decoder import EbpfCounters
from provarmor.sources.ebpf.kernel import EbpfUnavailable, check_prerequisites
from provarmor.sources.ebpf.program import ProgramOptions
from provarmor.sources.ebpf.runner import EbpfSource
from provarmor.sources.ebpf.settings import EbpfSettings
from provarmor.sources.procfs import read_clock, read_host_identity, read_process

pytestmark = pytest.mark.privileged

SOCKET_CLIENT = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
for _ in range(3):
    s.sendall(b"x" * 1000)
s.close()
"""

MISC = """
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
client = socket.create_connection(server.getsockname())
peer, _ = server.accept()
client.sendall(b"y" * 700)
assert len(peer.recv(4096)) == 700
for sock in (client, peer, server):
    sock.close()
fd = os.memfd_create("provarmor-test")
os.close(fd)
os.setgid(0)
os.setuid(0)
os.chown("target", 0, 0)
os.symlink("target", "link")
os.rename("link", "link2")
os.rmdir("subdir")
os.unlink("link2")
libc.ptrace(0, 0, 0, 0)
"""


def _missing_prerequisite() -> str:
    if os.geteuid() != 0:
        return "needs root to load eBPF programs"
    if shutil.which("bpftrace") is None:
        return "needs bpftrace (apt-get install bpftrace)"
    try:
        check_prerequisites(bpftrace="bpftrace")
    except EbpfUnavailable as exc:
        return str(exc)
    return ""


@dataclass
class Capture:
    events: list[Event]
    counters: EbpfCounters
    port: int
    workdir: Path
    pids: dict[str, int] = field(default_factory=dict)
    proc_entity: dict[str, str] = field(default_factory=dict)

    def of(self, action: Action, pid: int | None = None) -> list[Event]:
        return [
            event
            for event in self.events
            if event.event.action == action and (pid is None or event.process.pid == pid)
        ]

    def exec_of(self, args: tuple[str, ...], *, parent: int) -> Event:
        """The one exec of ``args`` by a child of ``parent`` (other processes on the host
        may run the same command meanwhile)."""
        found = [
            event
            for event in self.of(Action.EXEC)
            if event.process.args == args
            and event.process.parent is not None
            and event.process.parent.pid == parent
        ]
        assert len(found) == 1, f"expected one exec of {args}, got {len(found)}"
        return found[0]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    reason = _missing_prerequisite()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("ebpf")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    source = EbpfSource(EbpfSettings(program=ProgramOptions(flush_ms=200)))
    source.start()
    try:
        pids, proc_entity = _run_scenarios(workdir, port)
    finally:
        source.stop()
        server.shutdown()
        server.server_close()
    events = list(source.events())
    return Capture(events, source.counters, port, workdir, pids, proc_entity)


def _run(name: str, argv: list[str], pids: dict[str, int], **kwargs: object) -> None:
    process = subprocess.Popen(argv, **kwargs)  # type: ignore[call-overload]
    pids[name] = process.pid
    assert process.wait(timeout=30) == 0, name


def _run_scenarios(workdir: Path, port: int) -> tuple[dict[str, int], dict[str, str]]:
    pids: dict[str, int] = {}
    _run("pipeline", ["sh", "-c", "cat /etc/hostname | wc -c"], pids, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    _run("curl_shell", ["sh", "-c", f"curl -s -o /dev/null {url}; true"], pids)
    (workdir / "a").write_text("hello\n")
    files = "cp a b && chmod 640 b && mv b c && rm c"
    _run("files", ["sh", "-c", files], pids, cwd=workdir)
    _run("client", [sys.executable, "-c", SOCKET_CLIENT, str(port)], pids)
    (workdir / "target").write_text("t\n")
    (workdir / "subdir").mkdir()
    _run("misc", [sys.executable, "-c", MISC], pids, cwd=workdir)
    terminal = subprocess.run(
        ["script", "-qec", "sh -c tty provarmor-on-a-terminal", "/dev/null"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    pids["terminal_name"] = int(terminal.stdout.strip().rsplit("/", 1)[-1])
    _run("no_terminal", ["setsid", "sh", "-c", "true", "provarmor-no-terminal"], pids)
    sleeper = subprocess.Popen(["sleep", "2"])
    pids["sleep"] = sleeper.pid
    time.sleep(0.3)
    clock, host = read_clock(), read_host_identity()
    info = read_process(sleeper.pid, clock=clock)
    assert info is not None
    proc_entity = {"sleep": info.entity_id(host)}
    sleeper.wait(timeout=10)
    time.sleep(0.6)
    return pids, proc_entity


def test_pipeline_exec_fork_and_exit_share_one_identity(capture: Capture) -> None:
    shell = capture.pids["pipeline"]
    cat = capture.exec_of(("cat", "/etc/hostname"), parent=shell)
    wc = capture.exec_of(("wc", "-c"), parent=shell)
    shell_exec = [e for e in capture.of(Action.EXEC, shell) if e.process.args[:1] == ("sh",)]
    assert len(shell_exec) == 1
    shell_id = shell_exec[0].process.entity_id
    for child in (cat, wc):
        assert child.process.parent is not None
        assert child.process.parent.entity_id == shell_id
        assert child.process.parent.pid == shell
        forks = capture.of(Action.FORK, child.process.pid)
        assert [fork.process.entity_id for fork in forks] == [child.process.entity_id]
        assert forks[0].process.parent is not None
        assert forks[0].process.parent.entity_id == shell_id
        exits = capture.of(Action.EXIT, child.process.pid)
        assert [ex.process.entity_id for ex in exits] == [child.process.entity_id]
    assert cat.file is not None and cat.file.path == "/usr/bin/cat"
    assert cat.process.executable == "/usr/bin/cat"
    assert cat.process.working_directory == os.getcwd()
    opens = [e.file.path for e in capture.of(Action.OPEN, cat.process.pid) if e.file]
    assert "/etc/hostname" in opens


def test_curl_exec_has_exact_argv_and_its_shell_as_parent(capture: Capture) -> None:
    url = f"http://127.0.0.1:{capture.port}/"
    shell = capture.pids["curl_shell"]
    curl = capture.exec_of(("curl", "-s", "-o", "/dev/null", url), parent=shell)
    shell_ids = {e.process.entity_id for e in capture.of(Action.EXEC, shell)}
    assert len(shell_ids) == 1
    assert curl.process.parent is not None
    assert curl.process.parent.entity_id in shell_ids
    assert curl.process.command_line == f"curl -s -o /dev/null {url}"
    fork = capture.of(Action.FORK, curl.process.pid)
    assert [event.process.entity_id for event in fork] == [curl.process.entity_id]
    connects = [
        e
        for e in capture.of(Action.CONNECT, curl.process.pid)
        if e.destination is not None and e.destination.port == capture.port
    ]
    assert len(connects) == 1
    connect = connects[0]
    assert connect.destination is not None and connect.destination.ip == "127.0.0.1"
    assert connect.network is not None
    assert (connect.network.transport, connect.network.direction) == ("tcp", "egress")
    assert connect.event.outcome in ("success", "unknown")


def test_an_exec_on_a_terminal_names_it_and_one_after_setsid_has_none(capture: Capture) -> None:
    """``script`` runs ``sh -c tty`` on a new pty, which ``tty`` printed: pts/N is ``ptsN``."""
    shells = [
        event
        for event in capture.of(Action.EXEC)
        if event.process.args == ("sh", "-c", "tty", "provarmor-on-a-terminal")
    ]
    assert len(shells) == 1
    on_terminal = capture.exec_of(("tty",), parent=shells[0].process.pid)
    assert on_terminal.process.tty == f"pts{capture.pids['terminal_name']}"
    assert shells[0].process.tty == on_terminal.process.tty
    after_setsid = capture.of(Action.EXEC, capture.pids["no_terminal"])[-1]
    assert after_setsid.process.args == ("sh", "-c", "true", "provarmor-no-terminal")
    assert after_setsid.process.tty == ""


def test_file_operations_in_a_temp_dir(capture: Capture) -> None:
    work = str(capture.workdir)
    creates = [e.file.path for e in capture.of(Action.CREATE) if e.file]
    assert f"{work}/b" in creates
    chmods = [e for e in capture.of(Action.CHMOD) if e.file and e.file.path == f"{work}/b"]
    assert len(chmods) == 1
    assert chmods[0].file is not None and chmods[0].file.mode == 0o640
    assert chmods[0].process.name == "chmod"
    renames = [e.file for e in capture.of(Action.RENAME) if e.file and e.file.path == f"{work}/c"]
    assert len(renames) == 1
    assert renames[0] is not None and renames[0].original_path == f"{work}/b"
    deletes = [e for e in capture.of(Action.DELETE) if e.file and e.file.path == f"{work}/c"]
    assert [(e.process.name, e.event.outcome) for e in deletes] == [("rm", "success")]


def test_python_socket_connect_and_aggregated_send(capture: Capture) -> None:
    client = capture.pids["client"]
    connects = capture.of(Action.CONNECT, client)
    assert len(connects) == 1
    connect = connects[0]
    assert connect.destination is not None
    assert (connect.destination.ip, connect.destination.port) == ("127.0.0.1", capture.port)
    assert connect.source is not None and connect.source.ip == "127.0.0.1"
    assert connect.source.port > 0
    assert connect.event.outcome == "success"
    sends = capture.of(Action.SEND, client)
    assert sum(e.event.count for e in sends) == 3
    assert sum(e.network.bytes for e in sends if e.network) == 3000
    assert all(e.destination == connect.destination for e in sends)


def test_bind_listen_accept_recv_and_identity_changes(capture: Capture) -> None:
    misc = capture.pids["misc"]
    binds = [e for e in capture.of(Action.BIND, misc) if e.source and e.source.ip == "127.0.0.1"]
    assert len(binds) == 1
    listens = capture.of(Action.LISTEN, misc)
    assert len(listens) == 1
    assert listens[0].source is not None and listens[0].source.port > 0
    accepts = capture.of(Action.ACCEPT, misc)
    assert len(accepts) == 1
    accept = accepts[0]
    assert accept.destination is not None and accept.source is not None
    assert accept.source.port == listens[0].source.port
    assert accept.network is not None and accept.network.direction == "ingress"
    recvs = [e for e in capture.of(Action.RECV, misc) if e.network and e.network.bytes == 700]
    assert len(recvs) == 1 and recvs[0].destination == accept.destination
    memfds = capture.of(Action.MEMFD_CREATE, misc)
    assert [(e.file.path, e.file.type) for e in memfds if e.file] == [
        ("memfd:provarmor-test", "memfd")
    ]
    assert [
        e.target.user.id for e in capture.of(Action.SETUID, misc) if e.target and e.target.user
    ] == ["0"]
    assert [
        e.target.user.id for e in capture.of(Action.SETGID, misc) if e.target and e.target.user
    ] == ["0"]


def test_chown_symlink_rmdir_ptrace(capture: Capture) -> None:
    misc = capture.pids["misc"]
    work = str(capture.workdir)
    chowns = capture.of(Action.CHOWN, misc)
    assert [(e.file.path, e.file.uid, e.file.gid) for e in chowns if e.file] == [
        (f"{work}/target", "0", "0")
    ]
    links = capture.of(Action.LINK, misc)
    assert [(e.file.path, e.file.original_path, e.file.type) for e in links if e.file] == [
        (f"{work}/link", "target", "symlink")
    ]
    renames = capture.of(Action.RENAME, misc)
    assert [(e.file.original_path, e.file.path) for e in renames if e.file] == [
        (f"{work}/link", f"{work}/link2")
    ]
    deletes = [(e.file.path, e.file.type) for e in capture.of(Action.DELETE, misc) if e.file]
    assert (f"{work}/subdir", "dir") in deletes
    assert (f"{work}/link2", "") in deletes
    ptraces = capture.of(Action.PTRACE, misc)
    assert len(ptraces) == 1
    target = ptraces[0].target
    assert target is not None and target.process is not None
    assert target.process.pid == os.getpid()


def test_exec_maps_its_libraries(capture: Capture) -> None:
    cat = capture.exec_of(("cat", "/etc/hostname"), parent=capture.pids["pipeline"])
    mapped = {e.file.path for e in capture.of(Action.MMAP_EXEC, cat.process.pid) if e.file}
    assert any(path.startswith("/") and "libc.so" in path for path in mapped), mapped


def test_entity_id_matches_procfs(capture: Capture) -> None:
    sleeper = capture.pids["sleep"]
    execs = capture.of(Action.EXEC, sleeper)
    assert len(execs) == 1
    assert execs[0].process.entity_id == capture.proc_entity["sleep"]


def test_own_process_is_not_traced_and_every_line_parsed(capture: Capture) -> None:
    assert not [e for e in capture.events if e.process.pid == os.getpid()]
    assert capture.counters.parse_errors == 0, capture.counters.errors
    assert capture.counters.events == len(capture.events)
    assert sum(capture.counters.by_action.values()) == len(capture.events)
    # Other work on this host may overflow the buffers while bpftrace detaches at stop;
    # whatever was lost must show up as gap events.
    gaps = capture.of(Action.GAP)
    assert sum(gap.event.count for gap in gaps) == capture.counters.lost


def test_a_burst_into_a_tiny_buffer_is_counted_as_a_gap(tmp_path: Path) -> None:
    reason = _missing_prerequisite()
    if reason:
        pytest.skip(reason)
    target = tmp_path / "burst"
    target.write_text("x")
    burst = (
        f"import os\nfor _ in range(40000):\n    os.close(os.open({str(target)!r}, os.O_RDONLY))\n"
    )
    options = ProgramOptions(families=("file",), socket_io=False)
    settings = EbpfSettings(perf_rb_pages=1, program=options)
    with EbpfSource(settings) as source:
        subprocess.run([sys.executable, "-c", burst], check=True, timeout=60)
    events = list(source.events())
    gaps = [e for e in events if e.event.action == Action.GAP]
    assert source.counters.lost > 0
    assert sum(gap.event.count for gap in gaps) == source.counters.lost
    assert len(gaps) == source.counters.gaps
    assert all(gap.process.entity_id == "" for gap in gaps)


def test_a_stalled_decoder_does_not_make_the_kernel_lose_records(tmp_path: Path) -> None:
    """Decoding stalls for a whole burst (the tap blocks, as a starved decoder would): the
    reader keeps moving bpftrace's output into memory, so bpftrace never blocks on its
    pipe and its kernel buffers never overflow; the burst is decoded afterwards."""
    reason = _missing_prerequisite()
    if reason:
        pytest.skip(reason)
    target = tmp_path / "burst"
    target.write_text("x")
    opens = 20000
    burst = (
        "import os, time\n"
        f"for i in range({opens}):\n"
        f"    os.close(os.open({str(target)!r}, os.O_RDONLY))\n"
        "    if i % 20 == 0: time.sleep(0.002)\n"
    )
    stalled, resume = threading.Event(), threading.Event()

    def tap(line: bytes) -> None:
        if stalled.is_set():
            resume.wait(120)

    options = ProgramOptions(families=("file",), socket_io=False)
    settings = EbpfSettings(perf_rb_pages=256, program=options)
    source = EbpfSource(settings, tap=tap)
    with source:
        stalled.set()
        subprocess.run([sys.executable, "-c", burst], check=True, timeout=120)
        waiting = source.backlog_bytes
        resume.set()
    events = list(source.events())
    seen = [
        e for e in events if e.event.action == Action.OPEN and e.file and e.file.path == str(target)
    ]
    assert source.counters.lost == 0
    assert len(seen) == opens
    assert waiting > opens * 100  # the burst waited in memory while decoding was stalled
    assert source.backlog_peak_bytes >= waiting


def test_start_names_what_is_missing() -> None:
    settings = EbpfSettings(bpftrace="/nonexistent/bpftrace")
    with pytest.raises(EbpfUnavailable, match="bpftrace"):
        EbpfSource(settings).start()


def test_a_bpftrace_that_refuses_to_start_is_reported_with_its_message() -> None:
    reason = _missing_prerequisite()
    if reason:
        pytest.skip(reason)
    source = EbpfSource(EbpfSettings(strlen=256))
    with pytest.raises(EbpfUnavailable, match="exceeds the current maximum of 200"):
        source.start()
    assert list(source.events()) == []
