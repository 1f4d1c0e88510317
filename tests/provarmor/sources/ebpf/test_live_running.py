"""The real sensor started on a host where a session and a server already run: the acts
they do afterwards get their lineage context from the ``running`` events.

Before the sensor starts: an sshd of the test's own on 127.0.0.1 (a key made here), a root
login over ``ssh -tt`` on it, and a web shell (tests/data/lineage/webshell.py) that has
already started a shell waiting for a file. Then the sensor starts, the session's shell
runs ``tar`` of ``/etc/ssh`` (interactive administration) and the waiting web shell's child
reads ``/etc/shadow`` (a server's child), as does a shell the web shell starts afterwards.
Run as root under the shared lock (``flock /tmp/provarmor-live.lock pytest ...``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provarmor.graph.lineage import ContextKind, LineageClassifier
from provarmor.model.actions import Action
from provarmor.model.event import Event
from provarmor.sources.base import SensorContext
from provarmor.sources.ebpf.sensor import EbpfSensor
from provarmor.testing.sensors import events_while

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

TOOLS = (("cat",), ("tar",))
"""The programs whose reads of /etc/shadow are the acts."""
WEBSHELL = Path(__file__).resolve().parents[3] / "data" / "lineage" / "webshell.py"
SSHD_CONFIG = (
    "Port {port}\nListenAddress 127.0.0.1\nHostKey {w}/host_key\nPidFile {w}/sshd.pid\n"
    "UsePAM yes\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n"
    "AuthorizedKeysFile {w}/authorized_keys\nStrictModes no\n"
)


def _wait_for(check: Callable[[], object], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Recording:
    events: list[Event]
    classifier: LineageClassifier
    work: Path
    sshd_port: int
    web_port: int

    def process_of(self, action: Action, path: str, args_contain: str) -> Event:
        found = [
            e
            for e in self.events
            if e.event.action is action
            and e.file is not None
            and e.file.path == path
            and args_contain in " ".join(e.process.args)
        ]
        assert found, (action, path, args_contain)
        return found[0]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    if os.geteuid() != 0:
        pytest.skip("the sensor needs root")
    for tool in ("bpftrace", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not Path("/usr/sbin/sshd").exists():
        pytest.skip("sshd is not installed")
    work = tmp_path_factory.mktemp("running")
    work.chmod(0o755)
    for name, comment in (("host_key", "host"), ("key", "pvrun")):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name), "-C", comment],
            check=True,
        )
    shutil.copy(work / "key.pub", work / "authorized_keys")
    (work / "authorized_keys").chmod(0o600)
    sshd_port = _free_port()
    (work / "sshd_config").write_text(SSHD_CONFIG.format(port=sshd_port, w=work))
    host_key = (work / "host_key.pub").read_text().split()[:2]
    (work / "known_hosts").write_text(f"[127.0.0.1]:{sshd_port} {' '.join(host_key)}\n")
    subprocess.run(
        ["/usr/sbin/sshd", "-f", str(work / "sshd_config"), "-E", str(work / "sshd.log")],
        check=True,
    )
    session = web = None
    try:
        _wait_for((work / "sshd.pid").exists, "sshd")
        with (work / "ssh.log").open("wb") as ssh_log:  # the child keeps its own copy
            session = subprocess.Popen(
                ["ssh", "-tt", "-p", str(sshd_port), "-i", str(work / "key"),
                 "-o", f"UserKnownHostsFile={work}/known_hosts", "root@127.0.0.1"],
                stdin=subprocess.PIPE,
                stdout=ssh_log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        assert session.stdin is not None
        session.stdin.write(b"tty; echo LOGGED-IN\n")
        session.stdin.flush()
        _wait_for(lambda: b"LOGGED-IN\r\n" in (work / "ssh.log").read_bytes(), "the ssh login")
        web = subprocess.Popen([sys.executable, str(WEBSHELL), str(work / "port"), str(work)])
        _wait_for(lambda: (work / "port").exists() and (work / "port").read_text(), "web shell")
        web_port = int((work / "port").read_text())

        def run(command: str) -> threading.Thread:
            query = urllib.parse.urlencode({"c": command})
            url = f"http://127.0.0.1:{web_port}/run?{query}"
            thread = threading.Thread(target=lambda: urllib.request.urlopen(url, timeout=60).read())
            thread.start()
            return thread

        waiting = run(f"while [ ! -e {work}/go ]; do sleep 0.1; done; cat /etc/shadow > /dev/null")
        _wait_for(lambda: _has_child(web.pid), "the web shell's waiting shell")

        def act() -> None:
            assert session is not None and session.stdin is not None
            session.stdin.write(
                f"tar czf {work}/b.tgz /etc/ssh /etc/shadow 2>/dev/null; echo ACT-DONE\n".encode()
            )
            session.stdin.flush()
            (work / "go").touch()
            waiting.join(timeout=30)
            run("cat /etc/shadow > /dev/null").join(timeout=30)

        shadow_reads: list[str] = []

        def every_act_seen(event: Event) -> bool:  # the tar's and both cats' shadow reads
            path = event.file.path if event.file is not None else ""
            opened = event.event.action is Action.OPEN
            if opened and path == "/etc/shadow" and event.process.args[:1] in TOOLS:
                shadow_reads.append(event.process.args[0])
            return shadow_reads.count("tar") >= 1 and shadow_reads.count("cat") >= 2

        context = SensorContext(
            exclude_pids=(os.getpid(),), audit_backlog_limit=8192, ebpf_perf_rb_pages=0
        )
        events = events_while(EbpfSensor(context), act, until=every_act_seen)
        classifier = LineageClassifier()
        for event in events:
            classifier.observe(event)
        yield Recording(events, classifier, work, sshd_port, web_port)
    finally:
        (work / "go").touch()
        if session is not None:
            assert session.stdin is not None
            with contextlib.suppress(OSError):
                session.stdin.write(b"exit\n")
                session.stdin.close()
            try:
                session.wait(timeout=10)
            except subprocess.TimeoutExpired:
                session.kill()
                session.wait()
        if web is not None:
            web.terminate()
            web.wait(timeout=10)
        pid_file = work / "sshd.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), 15)


def _has_child(pid: int) -> bool:
    """Whether any thread of ``pid`` has a child (the web shell forks from its threads)."""
    return any(task.read_text().split() for task in Path(f"/proc/{pid}/task").glob("*/children"))


def test_the_servers_and_the_session_already_running_are_reported_first(
    recording: Recording,
) -> None:
    running = [e for e in recording.events if e.event.action is Action.RUNNING]
    assert running, "no running events"
    first_other = next(
        i for i, e in enumerate(recording.events) if e.event.action is not Action.RUNNING
    )
    assert all(e.event.action is Action.RUNNING for e in recording.events[:first_other])
    listeners = {(e.process.executable, e.source.port) for e in running if e.source is not None}
    assert ("/usr/sbin/sshd", recording.sshd_port) in listeners
    assert any(port == recording.web_port for _exe, port in listeners)
    terminals = [e for e in running if e.process.tty.startswith("pts")]
    assert terminals, "the ssh session's shell has its terminal"
    assert not [e for e in running if e.process.pid == os.getpid()]  # the agent's own


def test_a_tar_in_the_ssh_session_opened_before_the_sensor_is_administration(
    recording: Recording,
) -> None:
    tar = recording.process_of(Action.OPEN, "/etc/shadow", f"{recording.work}/b.tgz")
    lineage = recording.classifier.lineage_of(tar.process.entity_id)
    assert lineage.kind is ContextKind.ADMIN, lineage.explain()
    assert "sshd session" in lineage.reason


def test_the_shadow_reads_of_the_web_shells_children_are_server_children(
    recording: Recording,
) -> None:
    reads = [
        e
        for e in recording.events
        if e.event.action is Action.OPEN
        and e.file is not None
        and e.file.path == "/etc/shadow"
        and e.process.args[:1] == ("cat",)
    ]
    assert len(reads) == 2, [e.process.args for e in reads]  # the waiting one, the new one
    for read in reads:
        lineage = recording.classifier.lineage_of(read.process.entity_id)
        assert lineage.kind is ContextKind.SERVER_CHILD, lineage.explain()
