"""Convert a real ``strace -f -yy`` recording into sysdig-style JSON lines (NodLink field shape).

Sysdig could not capture on the recording machine (see README.md), so the fixture was
recorded with strace and re-encoded here: every output record is one real system call from
the strace log; only the encoding changes. Nothing is invented:

* process fields (``proc.pid``, ``proc.ppid``, ``proc.name``, ``proc.exe``, ``proc.exepath``,
  ``proc.cmdline``, ``proc.pname``, ``proc.pcmdline``, ``proc.cwd``) come from the execve,
  clone, chdir and ``AT_FDCWD<dir>`` annotations seen earlier in the same log;
* ``fd.name`` / ``fd.typechar`` come from strace's ``-yy`` fd annotations; socket tuples are
  written client->server as sysdig does (a socket is server side when its local port is one
  the process bound and listened on);
* ``evt.args`` renders the parameters strace printed in sysdig's ``key=value`` style. strace
  prints one line per call, so enter and exit parameters are merged into one ``<`` record;
* ``+++ exited`` / ``+++ killed`` lines become sysdig ``procexit`` records (direction ``>``);
  strace's ``exit_group`` lines are dropped because sysdig reports process death as procexit.

Usage::

    python strace_to_sysdig.py --excerpt raw.strace session.strace   # keep the relevant lines
    python strace_to_sysdig.py session.strace session.sysdig.jsonl  # re-encode them

The excerpt keeps every process, network and file event except those on shared libraries,
locale/python stdlib files, /etc, /proc, /sys, /dev/null, /dev/tty, and failed ENOENT opens
(the dynamic loader's search), and except signal notices.
"""

from __future__ import annotations

import argparse
import errno
import json
import re
import signal
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

LINE = re.compile(r"^(\d+)\s+(\d+)\.(\d{9}) (.*)$")
CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(.*)$", re.S)
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$", re.S)
EXITED = re.compile(r"^\+\+\+ (exited with (\d+)|killed by (\w+)).*\+\+\+$")
FD_ANNOT = re.compile(r"^(-?\d+)<(.*)>$", re.S)
SOCK = re.compile(r"^(TCP|UDP|TCPv6|UDPv6|UNIX)(?:-\w+)?:\[(.*)\]$")
NOISE = (
    "/usr/lib",
    "/lib",
    "/usr/share",
    "/usr/local/lib",
    "/etc/",
    "/proc/",
    "/sys/",
    "/dev/null",
    "/dev/tty",
)
O_FLAGS = {
    "O_RDONLY": 0,
    "O_WRONLY": 0o1,
    "O_RDWR": 0o2,
    "O_CREAT": 0o100,
    "O_EXCL": 0o200,
    "O_NOCTTY": 0o400,
    "O_TRUNC": 0o1000,
    "O_APPEND": 0o2000,
    "O_NONBLOCK": 0o4000,
    "O_DIRECTORY": 0o200000,
    "O_NOFOLLOW": 0o400000,
    "O_CLOEXEC": 0o2000000,
}
CLONE_FLAGS = {
    "CLONE_VM": 0x100,
    "CLONE_FS": 0x200,
    "CLONE_FILES": 0x400,
    "CLONE_SIGHAND": 0x800,
    "CLONE_VFORK": 0x4000,
    "CLONE_PARENT": 0x8000,
    "CLONE_THREAD": 0x10000,
    "CLONE_SYSVSEM": 0x40000,
    "CLONE_SETTLS": 0x80000,
    "CLONE_PARENT_SETTID": 0x100000,
    "CLONE_CHILD_CLEARTID": 0x200000,
    "CLONE_CHILD_SETTID": 0x1000000,
    "SIGCHLD": 17,
}


@dataclass
class Proc:
    comm: str = ""
    argv: list[str] = field(default_factory=list)
    exepath: str = ""
    ppid: int = 0
    cwd: str = ""


@dataclass
class Call:
    number: int
    tid: int
    ts: int
    name: str
    args: list[str]
    result: str
    raw_lines: list[int]


def split_args(text: str) -> list[str]:
    """Split strace's argument list on top-level commas (quotes and brackets respected)."""
    parts: list[str] = []
    depth = 0
    previous = ""
    current: list[str] = []
    in_str = False
    escaped = False
    for char in text:
        if in_str:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_str = False
            continue
        if char == '"':
            in_str = True
        elif char in "[{(<":
            depth += 1
        elif char in "]})" or (char == ">" and previous not in "-="):
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
        previous = char
    if current and "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def unquote(text: str) -> str:
    text = text.strip()
    if text.endswith("..."):
        text = text[:-3]
    if text.startswith('"') and text.endswith('"'):
        return bytes(text[1:-1], "utf-8").decode("unicode_escape")
    return text


def parse_calls(lines: list[str]) -> tuple[list[Call], list[tuple[int, int, int, str]]]:
    """Pair ``<unfinished ...>`` with ``<... resumed>`` lines; return calls and exit notices."""
    pending: dict[int, tuple[int, str]] = {}
    calls: list[Call] = []
    exits: list[tuple[int, int, int, str]] = []
    for number, line in enumerate(lines, 1):
        match = LINE.match(line.rstrip("\n"))
        if not match:
            continue
        tid, ts = int(match[1]), int(match[2]) * 1_000_000_000 + int(match[3])
        body = match[4]
        if body.endswith(" <unfinished ...>"):
            pending[tid] = (number, body[: -len(" <unfinished ...>")])
            continue
        resumed = RESUMED.match(body)
        first = number
        if resumed:
            if tid not in pending:
                continue  # the call's first half is not in this log: its arguments are unknown
            first, head = pending.pop(tid)
            body = head + resumed[2]
        exited = EXITED.match(body)
        if exited:
            exits.append((number, tid, ts, exited[2] or exited[3]))
            continue
        call = CALL.match(body)
        if call:
            lines_used = sorted({first, number})
            calls.append(Call(number, tid, ts, call[1], split_args(call[2]), call[3], lines_used))
    return calls, exits


def fd_info(annot: str) -> tuple[int, str, str]:
    """``3</tmp/x>`` -> (3, name, typechar) with sockets left in strace's local->remote form."""
    match = FD_ANNOT.match(annot.strip())
    if not match:
        return -1, "", ""
    number, inner = int(match[1]), match[2]
    sock = SOCK.match(inner)
    if sock:
        kind = {"TCP": "4", "UDP": "4", "TCPv6": "6", "UDPv6": "6", "UNIX": "u"}[sock[1]]
        tuple_text = sock[2] if ":" in sock[2] else ""
        return number, tuple_text, kind
    if inner.startswith("pipe:"):
        return number, inner, "p"
    inner = re.sub(r"<char .*$", "", inner)
    return number, inner, "f"


def is_noise(call: Call) -> bool:
    if call.name == "exit_group":
        return True
    if call.name in ("openat", "read", "write"):
        if "ENOENT" in call.result:
            return True
        if call.name == "openat":
            paths = [unquote(call.args[1]), fd_info(call.result)[1]]
        else:
            paths = [fd_info(call.args[0])[1]]
        return any(path.startswith(NOISE) for path in paths)
    return False


class Converter:
    """Replays the calls in order, keeping per-process state, and renders sysdig records."""

    def __init__(self) -> None:
        self.tgid: dict[int, int] = {}
        self.procs: dict[int, Proc] = {}
        self.server_ports: dict[int, set[int]] = {}
        self.num = 0

    def proc_of(self, tid: int) -> tuple[int, Proc]:
        pid = self.tgid.setdefault(tid, tid)
        return pid, self.procs.setdefault(pid, Proc())

    def note_cwd(self, tid: int, call: Call) -> None:
        for arg in call.args:
            if arg.startswith("AT_FDCWD<"):
                self.proc_of(tid)[1].cwd = arg[len("AT_FDCWD<") : -1]

    def socket_name(self, pid: int, tuple_text: str) -> str:
        """strace prints local->remote; sysdig prints client->server."""
        if "->" not in tuple_text:
            return tuple_text
        local, remote = tuple_text.split("->", 1)
        port = int(local.rsplit(":", 1)[1])
        if port in self.server_ports.get(pid, set()):
            return f"{remote}->{local}"
        return tuple_text

    def record(self, call: Call, *, evt_type: str, direction: str, args: str) -> dict[str, object]:
        pid, proc = self.proc_of(call.tid)
        self.num += 1
        out: dict[str, object] = {
            "evt.num": self.num,
            "evt.time": call.ts,
            "evt.type": evt_type,
            "evt.dir": direction,
            "evt.args": args,
            "proc.pid": pid,
            "thread.tid": call.tid,
        }
        if proc.comm:
            out["proc.name"] = proc.comm
            out["proc.exe"] = proc.argv[0] if proc.argv else proc.comm
            out["proc.exepath"] = proc.exepath
            out["proc.cmdline"] = " ".join([proc.comm, *proc.argv[1:]])
        if proc.ppid:
            parent = self.procs.get(proc.ppid, Proc())
            out["proc.ppid"] = proc.ppid
            if parent.comm:
                out["proc.pname"] = parent.comm
                out["proc.pcmdline"] = " ".join([parent.comm, *parent.argv[1:]])
        if proc.cwd:
            out["proc.cwd"] = proc.cwd
        return out

    def res(self, result: str) -> str:
        """strace's ``-1 ENOENT (...)`` becomes sysdig's ``-2(ENOENT)``."""
        match = re.match(r"^(-?\d+)(?:\s+(E\w+))?", result)
        if not match:
            return "0"
        if match[2]:
            return f"-{getattr(errno, match[2], 0)}({match[2]})"
        return match[1]

    def convert(self, call: Call) -> dict[str, object] | None:
        handler = getattr(self, "on_" + call.name, None)
        if handler is None:
            return None
        self.note_cwd(call.tid, call)
        result: dict[str, object] | None = handler(call)
        return result

    def on_execve(self, call: Call) -> dict[str, object]:
        pid, proc = self.proc_of(call.tid)
        filename = unquote(call.args[0])
        argv = [unquote(a) for a in split_args(call.args[1][1:-1])]
        ok = call.result.strip() == "0"
        if ok:
            proc.comm = filename.rsplit("/", 1)[-1][:15]
            proc.argv = argv
            proc.exepath = filename
        parent = self.procs.get(proc.ppid, Proc())
        args = (
            f"res={self.res(call.result)} exe={argv[0] if argv else ''} "
            f"args={'.'.join(argv[1:])}. tid={call.tid}({proc.comm}) pid={pid}({proc.comm}) "
            f"ptid={proc.ppid}({parent.comm}) cwd={proc.cwd} filename={filename}"
        )
        return self.record(call, evt_type="execve", direction="<", args=args)

    def clone_flags(self, call: Call) -> list[str]:
        text = " ".join(call.args)
        match = re.search(r"flags=([A-Z_|0-9]+)", text)
        return match[1].split("|") if match else []

    def on_clone(self, call: Call) -> dict[str, object]:
        pid, proc = self.proc_of(call.tid)
        flags = self.clone_flags(call)
        child = int(re.match(r"-?\d+", call.result.strip())[0])  # type: ignore[index]
        if child > 0:
            if "CLONE_THREAD" in flags:
                self.tgid[child] = pid
            else:
                self.tgid[child] = child
                self.procs[child] = replace(proc, argv=list(proc.argv), ppid=pid)
        value = sum(CLONE_FLAGS.get(name, 0) for name in flags)
        parent = self.procs.get(proc.ppid, Proc())
        args = (
            f"res={child} exe={proc.argv[0] if proc.argv else ''} "
            f"args={'.'.join(proc.argv[1:])}. tid={call.tid}({proc.comm}) pid={pid}({proc.comm}) "
            f"ptid={proc.ppid}({parent.comm}) cwd={proc.cwd} flags={value}({'|'.join(flags)})"
        )
        return self.record(call, evt_type=call.name, direction="<", args=args)

    on_clone3 = on_clone
    on_fork = on_clone
    on_vfork = on_clone

    def on_chdir(self, call: Call) -> dict[str, object]:
        path = unquote(call.args[0])
        if call.result.strip() == "0":
            self.proc_of(call.tid)[1].cwd = path
        return self.record(
            call, evt_type="chdir", direction="<", args=f"res={self.res(call.result)} path={path}"
        )

    def on_kill(self, call: Call) -> dict[str, object]:
        target = int(call.args[0])
        comm = self.procs.get(target, Proc()).comm
        number = int(getattr(signal, call.args[1], 0))
        args = f"res={self.res(call.result)} pid={target}({comm}) sig={number}({call.args[1]})"
        return self.record(call, evt_type="kill", direction="<", args=args)

    def on_openat(self, call: Call) -> dict[str, object]:
        name = unquote(call.args[1])
        flags = call.args[2].split("|")
        value = sum(O_FLAGS.get(flag, 0) for flag in flags)
        mode = call.args[3] if len(call.args) > 3 else "0"
        number, path, _ = fd_info(call.result)
        typechar = "d" if "O_DIRECTORY" in flags else "f"
        shown = number if number >= 0 else self.res(call.result)
        args = (
            f"fd={shown}(<{typechar}>{path}) dirfd=-100(AT_FDCWD) name={name} "
            f"flags={value}({'|'.join(flags)}) mode={mode}"
        )
        out = self.record(call, evt_type="openat", direction="<", args=args)
        if path:
            out.update({"fd.num": number, "fd.name": path, "fd.typechar": typechar})
        return out

    def io(self, call: Call, evt_type: str) -> dict[str, object]:
        pid, _ = self.proc_of(call.tid)
        number, name, typechar = fd_info(call.args[0])
        if typechar in "46":
            name = self.socket_name(pid, name)
        size = call.args[2] if len(call.args) > 2 else ""
        args = f"fd={number}(<{typechar}>{name}) size={size} res={self.res(call.result)}"
        if typechar in "46" and "->" in name:
            args += f" tuple={name}"
        out = self.record(call, evt_type=evt_type, direction="<", args=args)
        out.update({"fd.num": number, "fd.name": name, "fd.typechar": typechar})
        return out

    def on_read(self, call: Call) -> dict[str, object]:
        return self.io(call, "read")

    def on_write(self, call: Call) -> dict[str, object]:
        return self.io(call, "write")

    def on_sendto(self, call: Call) -> dict[str, object]:
        return self.io(call, "sendto")

    def on_recvfrom(self, call: Call) -> dict[str, object]:
        return self.io(call, "recvfrom")

    def sockaddr(self, text: str) -> str:
        path = re.search(r'sun_path="([^"]*)"', text)
        if path:
            return path[1]
        port = re.search(r"htons\((\d+)\)", text)
        addr = re.search(r'inet_addr\("([\d.]+)"\)', text)
        return f"{addr[1] if addr else ''}:{port[1] if port else ''}"

    def on_connect(self, call: Call) -> dict[str, object]:
        number, name, typechar = fd_info(call.args[0])
        addr = self.sockaddr(call.args[1])
        tuple_text = name if "->" in name else "NULL"
        shown = f"<{typechar}t>" if typechar in "46" else f"<{typechar}>"
        args = f"res={self.res(call.result)} tuple={tuple_text} fd={number}({shown}) addr={addr}"
        out = self.record(call, evt_type="connect", direction="<", args=args)
        out.update({"fd.num": number, "fd.typechar": typechar})
        if "->" in name:
            out["fd.name"] = name
        return out

    def on_bind(self, call: Call) -> dict[str, object]:
        number, _, typechar = fd_info(call.args[0])
        addr = self.sockaddr(call.args[1])
        args = f"res={self.res(call.result)} fd={number}(<{typechar}t>) addr={addr}"
        out = self.record(call, evt_type="bind", direction="<", args=args)
        out.update({"fd.num": number, "fd.typechar": typechar})
        return out

    def on_listen(self, call: Call) -> dict[str, object]:
        pid, _ = self.proc_of(call.tid)
        number, name, typechar = fd_info(call.args[0])
        if ":" in name:
            self.server_ports.setdefault(pid, set()).add(int(name.rsplit(":", 1)[1]))
        args = (
            f"res={self.res(call.result)} fd={number}(<{typechar}t>{name}) backlog={call.args[1]}"
        )
        out = self.record(call, evt_type="listen", direction="<", args=args)
        out.update({"fd.num": number, "fd.name": name, "fd.typechar": typechar})
        return out

    def on_accept4(self, call: Call) -> dict[str, object]:
        pid, _ = self.proc_of(call.tid)
        number, name, typechar = fd_info(call.result)
        name = self.socket_name(pid, name)
        args = f"fd={number}(<{typechar}t>{name}) tuple={name} queuepct=0"
        out = self.record(call, evt_type="accept4", direction="<", args=args)
        out.update({"fd.num": number, "fd.name": name, "fd.typechar": typechar})
        return out

    on_accept = on_accept4

    def on_renameat2(self, call: Call) -> dict[str, object]:
        old, new = unquote(call.args[1]), unquote(call.args[3])
        flags = call.args[4] if len(call.args) > 4 else "0"
        args = (
            f"res={self.res(call.result)} olddirfd=-100(AT_FDCWD) oldpath={old} "
            f"newdirfd=-100(AT_FDCWD) newpath={new} flags={flags}"
        )
        return self.record(call, evt_type=call.name, direction="<", args=args)

    on_renameat = on_renameat2

    def on_unlinkat(self, call: Call) -> dict[str, object]:
        name = unquote(call.args[1])
        args = f"res={self.res(call.result)} dirfd=-100(AT_FDCWD) name={name} flags={call.args[2]}"
        return self.record(call, evt_type="unlinkat", direction="<", args=args)

    def on_fchmodat(self, call: Call) -> dict[str, object]:
        name = unquote(call.args[1])
        args = (
            f"res={self.res(call.result)} dirfd=-100(AT_FDCWD) filename={name} mode={call.args[2]}"
        )
        return self.record(call, evt_type="fchmodat", direction="<", args=args)

    def procexit(self, number: int, tid: int, ts: int, status: str) -> dict[str, object]:
        call = Call(number, tid, ts, "procexit", [], status, [number])
        code = status if status.isdigit() else "0"
        args = f"status={code} ret={code}" + ("" if status.isdigit() else f" sig={status}")
        return self.record(call, evt_type="procexit", direction=">", args=args)


def excerpt(lines: list[str]) -> list[str]:
    calls, exits = parse_calls(lines)
    keep = {n for call in calls if not is_noise(call) for n in call.raw_lines}
    keep |= {number for number, *_ in exits}
    return [line for number, line in enumerate(lines, 1) if number in keep]


def convert(lines: list[str]) -> list[dict[str, object]]:
    calls, exits = parse_calls(lines)
    items: list[tuple[int, object]] = [(c.number, c) for c in calls]
    items += [(e[0], e) for e in exits]
    items.sort(key=lambda item: item[0])
    converter = Converter()
    records: list[dict[str, object]] = []
    for _, item in items:
        if isinstance(item, Call):
            if is_noise(item):
                continue
            record = converter.convert(item)
        else:
            number, tid, ts, status = item  # type: ignore[misc]
            record = converter.procexit(number, tid, ts, status)
        if record is not None:
            records.append(record)
    return records


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--excerpt", action="store_true", help="write the kept strace lines")
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    options = parser.parse_args(argv)
    lines = options.source.read_text(encoding="utf-8", errors="replace").splitlines()
    if options.excerpt:
        options.target.write_text("\n".join(excerpt(lines)) + "\n", encoding="utf-8")
        return 0
    with options.target.open("w", encoding="utf-8") as out:
        for record in convert(lines):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
