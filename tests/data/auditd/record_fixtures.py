"""Record the real audit fixtures in this folder. Run as root from the repository root:

    .venv/bin/python tests/data/auditd/record_fixtures.py [SCENARIO ...]

For each scenario it starts a private auditd (its own config dir and log file under
/tmp/pa-audit), loads ProvArmor's rules (provarmor.sources.auditd.rules) restricted to the
scenario's login uid, runs the scenario's shell script as that login uid, then deletes exactly
those rules, stops that auditd and restores the kernel's audit settings it found. The HTTP
server the scenarios talk to runs on 127.0.0.1 only, under its own login uid, started before
the first recording so its Python start-up is not in the logs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from provarmor.sources.auditd.rules import auditctl_commands, removal_commands

HERE = Path(__file__).resolve().parent
WORK = Path("/tmp/pa-audit")
WWW = WORK / "www"
PORT = 8765
SCENARIO_AUID = 4242
SERVER_AUID = 4243

PAYLOAD = f"""#!/bin/bash
exec 3<>/dev/tcp/127.0.0.1/{PORT}
printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' >&3
head -c 64 <&3
"""

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
"""Scenario environment: no LANG, so programs do not open locale files (smaller fixtures)."""
PY = "/usr/bin/python3 -I -S -c"
SCENARIOS: dict[str, str] = {
    "pipeline": "cat /etc/passwd | grep root | wc -l",
    "curl_http": f"curl -s -o /dev/null http://127.0.0.1:{PORT}/index.html",
    "file_ops": (
        "mkdir -p /tmp/pa-files && cd /tmp/pa-files && cp /etc/hostname a.txt && "
        "chmod 600 a.txt && mv a.txt b.txt && ln -s b.txt c.txt && ln b.txt d.txt && "
        "chown nobody d.txt && truncate -s 0 d.txt && rm b.txt c.txt d.txt && "
        "mkdir sub && rmdir sub && cd / && rmdir /tmp/pa-files"
    ),
    "python_connect": (
        f"{PY} \"import socket; s=socket.create_connection(('127.0.0.1', {PORT})); "
        "s.sendall(b'GET /index.html HTTP/1.0\\r\\n\\r\\n'); print(len(s.recv(4096)))\""
    ),
    "attack_chain": (
        f"rm -rf /tmp/x && mkdir -p /tmp/x && "
        f"curl -s -o /tmp/x/payload http://127.0.0.1:{PORT}/payload && "
        "chmod +x /tmp/x/payload && /tmp/x/payload"
    ),
    "privileged": (
        "sleep 30 & "
        f'{PY} "import ctypes,os,sys; libc=ctypes.CDLL(None); p=int(sys.argv[1]); '
        'print(libc.ptrace(16,p,0,0)); os.waitpid(p,0); print(libc.ptrace(17,p,0,0))" $!; '
        "kill -TERM $!; setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/id; "
        f"{PY} \"import os; fd=os.memfd_create('pa_memfd', 0); "
        "os.write(fd, b'#!/bin/sh\\necho from-memfd\\n'); "
        "os.execv('/proc/self/fd/%d' % fd, ['memfd-script'])\""
    ),
    "posix_spawn": (
        f"{PY} \"import os; pid = os.posix_spawn('/usr/bin/true', ['true', 'spawned'], {{}}); "
        'os.waitpid(pid, 0)"'
    ),
    "long_args": "/usr/bin/true $(head -c 9000 /dev/zero | tr '\\0' a) short",
}
RAW_FORMAT = {"pipeline_raw": "pipeline"}
"""Extra recordings written with ``log_format = RAW`` (no 0x1d-separated enrichment)."""
NETLINK = {"attack_chain"}
"""Scenarios also captured from the kernel's audit multicast group (raw netlink form)."""


def auditctl(*args: str) -> str:
    return subprocess.run(["auditctl", *args], check=True, capture_output=True, text=True).stdout


def as_login_uid(auid: int, command: str) -> list[str]:
    """A command line that sets its own login uid, then execs bash running ``command``."""
    return ["sh", "-c", f'echo {auid} > /proc/self/loginuid && exec /usr/bin/bash -c "$0"', command]


def start_auditd(name: str, *, log_format: str) -> tuple[Path, int]:
    conf = WORK / name
    shutil.rmtree(conf, ignore_errors=True)
    conf.mkdir(parents=True)
    lines = []
    for line in Path("/etc/audit/auditd.conf").read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key == "log_file":
            line = f"log_file = {conf / 'audit.log'}"
        elif key == "log_format":
            line = f"log_format = {log_format}"
        elif key == "flush":
            line = "flush = INCREMENTAL_ASYNC"
        lines.append(line)
    (conf / "auditd.conf").write_text("\n".join(lines) + "\n")
    (conf / "plugins.d").mkdir()
    subprocess.run(["auditd", "-c", str(conf)], check=True)
    for _ in range(100):
        status = auditctl("-s")
        pid = int(status.split("pid ", 1)[1].split()[0])
        if pid:
            return conf, pid
        time.sleep(0.1)
    raise RuntimeError("auditd did not register")


def load_rules() -> None:
    auditctl("-b", "8192")
    for args in auditctl_commands(arches=("b64",)):
        key_at = args.index("-k")
        for auid in (SCENARIO_AUID, SERVER_AUID):
            auditctl(*args[:key_at], "-F", f"auid={auid}", *args[key_at:])


def remove_rules() -> None:
    for args in removal_commands():
        subprocess.run(["auditctl", *args], check=False, capture_output=True)


def stop_auditd(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def capture_netlink(out: Path, stop_flag: Path) -> None:
    """Child process body: copy every audit multicast message as {"type", "text"} lines."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)  # NETLINK_AUDIT
    sock.setsockopt(socket.SOL_SOCKET, 33, 16 * 1024 * 1024)  # SO_RCVBUFFORCE
    sock.bind((0, 1))  # AUDIT_NLGRP_READLOG
    sock.settimeout(0.2)
    with out.open("w") as handle:
        while not stop_flag.exists():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # ENOBUFS: the kernel dropped messages for us
                handle.write(json.dumps({"type": 0, "text": "LOST"}) + "\n")
                continue
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _, _, _ = struct.unpack_from("=IHHII", data, offset)
                payload = data[offset + 16 : offset + max(length, 16)]
                text = payload.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
                handle.write(json.dumps({"type": kind, "text": text}) + "\n")
                offset += (max(length, 16) + 3) & ~3
            handle.flush()


def record(name: str, script: str, *, log_format: str, netlink: bool) -> None:
    conf, pid = start_auditd(name, log_format=log_format)
    capture = None
    stop_flag = conf / "stop"
    try:
        load_rules()
        if netlink:
            capture = subprocess.Popen(
                [sys.executable, __file__, "--netlink", str(conf / "netlink.jsonl"), str(stop_flag)]
            )
            time.sleep(0.5)
        subprocess.run(
            as_login_uid(SCENARIO_AUID, script), check=False, cwd="/tmp", env=ENV, timeout=60
        )
        time.sleep(1.0)
    finally:
        remove_rules()
        stop_flag.touch()
        if capture is not None:
            capture.wait(timeout=10)
        stop_auditd(pid)
    # Not str.splitlines: it also splits at 0x1d, the ENRICHED format's field separator.
    log_text = (conf / "audit.log").read_text(errors="surrogateescape")
    log_lines = [line + "\n" for line in log_text.split("\n") if line]
    (HERE / f"{name}.log").write_text(
        "".join(slice_session(log_lines, text_of=lambda line: line)), errors="surrogateescape"
    )
    if netlink:
        messages = (conf / "netlink.jsonl").read_text().splitlines(keepends=True)
        kept = slice_session(messages, text_of=lambda line: str(json.loads(line)["text"]))
        (HERE / f"{name}.netlink.jsonl").write_text("".join(kept))


def slice_session(lines: list[str], *, text_of: Callable[[str], str]) -> list[str]:
    """Keep whole events (every record of a serial) whose SYSCALL record has one of our login
    uids, plus the daemon's start and end records; drop everybody else's (auditctl loading the
    rules, other programs on the machine)."""
    serial_of: list[str] = []
    keep: set[str] = set()
    for line in lines:
        text = text_of(line)
        serial = text.partition("msg=audit(")[2] or text.partition("audit(")[2]
        serial = serial.partition(")")[0].partition(":")[2]
        serial_of.append(serial)
        fields = text.split("\x1d", 1)[0].split()
        daemon = text.startswith(("type=DAEMON_START", "type=DAEMON_END"))
        ours = " syscall=" in text and any(
            field in (f"auid={SCENARIO_AUID}", f"auid={SERVER_AUID}") for field in fields
        )
        if daemon or ours:
            keep.add(serial)
    return [line for line, serial in zip(lines, serial_of, strict=True) if serial in keep]


def main(names: list[str]) -> None:
    before = auditctl("-s")
    enabled = before.split("enabled ", 1)[1].split()[0]
    backlog = before.split("backlog_limit ", 1)[1].split()[0]
    WWW.mkdir(parents=True, exist_ok=True)
    (WWW / "index.html").write_text("<html><body>provarmor fixture</body></html>\n")
    (WWW / "payload").write_text(PAYLOAD)
    server = subprocess.Popen(
        as_login_uid(SERVER_AUID, f"exec /usr/bin/python3 -m http.server {PORT} --bind 127.0.0.1"),
        cwd=WWW,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    try:
        todo = names or [*SCENARIOS, *RAW_FORMAT]
        for name in todo:
            if name in RAW_FORMAT:
                record(name, SCENARIOS[RAW_FORMAT[name]], log_format="RAW", netlink=False)
            else:
                record(name, SCENARIOS[name], log_format="ENRICHED", netlink=name in NETLINK)
    finally:
        server.terminate()
        server.wait(timeout=10)
        remove_rules()
        auditctl("-b", backlog)
        auditctl("-e", enabled)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--netlink"]:
        capture_netlink(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main(sys.argv[1:])
