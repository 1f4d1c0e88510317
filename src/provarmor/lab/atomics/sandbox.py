"""The sandbox atomic tests run in: loopback-only network, private /tmp, /var/tmp and /root.

One :class:`Sandbox` serves a whole run. It creates a network namespace
``provarmor-lab-<token>`` holding nothing but a loopback interface, so no test can send a
packet anywhere else whatever its command says, and starts the local download server
(:mod:`provarmor.lab.atomics.downloads`) inside it. :meth:`Sandbox.argv` builds the command
line for one phase of a test: ``ip netns exec`` enters the namespace, and a small Python
bootstrap makes the mount namespace private, binds the test's scratch directories onto
``/tmp``, ``/var/tmp`` and ``/root`` (refusing to go on if a bind fails), changes to
``/root`` and executes the test's shell in place, so the process the lab starts keeps its
pid from ``ip`` to the shell. The binds live only in that process's mount namespace.

Everything the sandbox starts runs in ``provarmor-lab-*`` cgroups and namespaces, which
:func:`provarmor.lab.cleanup` removes after a crash.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from provarmor.lab import proc
from provarmor.lab.atomics.areas import HOME
from provarmor.lab.atomics.arguments import Workspace
from provarmor.lab.atomics.downloads import SERVER_HOST, SERVER_PORT
from provarmor.lab.jail import ProcessJail
from provarmor.lab.netns import NAMESPACE_PREFIX, remove_namespace
from provarmor.model.errors import ProvArmorError

BOOTSTRAP = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def fail(what):
    error = os.strerror(ctypes.get_errno())
    sys.stderr.write("provarmor sandbox: %s: %s\\n" % (what, error))
    os._exit(126)
if libc.unshare(0x00020000) != 0:
    fail("unshare(CLONE_NEWNS)")
if libc.mount(b"none", b"/", None, 16384 | 262144, None) != 0:
    fail("make / private")
count = int(sys.argv[1])
pairs = sys.argv[2 : 2 + 2 * count]
handles = []
for source in pairs[0::2]:
    try:
        handles.append(os.open(source, os.O_PATH | os.O_DIRECTORY))
    except OSError as error:
        sys.stderr.write("provarmor sandbox: open %s: %s\\n" % (source, error.strerror))
        os._exit(126)
for handle, target in zip(handles, pairs[1::2]):
    origin = ("/proc/self/fd/%d" % handle).encode()
    if libc.mount(origin, target.encode(), None, 4096 | 16384, None) != 0:
        fail("bind " + target)
    os.close(handle)
rest = sys.argv[2 + 2 * count :]
os.chdir(rest[0])
os.execv(rest[1], rest[2:])
"""
"""Runs as ``python -I -S -c BOOTSTRAP N src dst ... cwd shell argv...``: private mounts,
the binds (sources opened first, so one bind cannot hide the next source; exit 126 if any
fails, so nothing runs unbound), then exec."""

SERVER = """
import functools, http.server, pathlib, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer((sys.argv[2], int(sys.argv[3])), handler)
pathlib.Path(sys.argv[4]).write_text("ready")
server.serve_forever()
"""
"""The local download server: serves ``www`` on loopback inside the namespace."""


class SandboxError(ProvArmorError):
    """The sandbox could not be set up."""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=20)
    if done.returncode != 0:
        raise SandboxError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class Sandbox:
    """A loopback-only namespace with the download server; use as a context manager."""

    def __init__(self, *, www: Path, log: Path) -> None:
        self.token = secrets.token_hex(4)
        self.namespace = f"{NAMESPACE_PREFIX}a{self.token}"
        self.www = www
        self.log = log
        self.jail: ProcessJail | None = None
        self.server_pid = 0
        self.server_start_ns = 0
        self._started = False

    def start(self) -> None:
        self._started = True
        self.jail = ProcessJail(f"s{self.token}")
        try:
            _ip("netns", "add", self.namespace)
            _ip("netns", "exec", self.namespace, "ip", "link", "set", "lo", "up")
            self._start_server()
        except BaseException:
            self.stop()
            raise

    def _start_server(self) -> None:
        self.www.mkdir(parents=True, exist_ok=True)
        ready = self.log.with_suffix(".ready")
        ready.unlink(missing_ok=True)
        argv = [
            "ip",
            "netns",
            "exec",
            self.namespace,
            sys.executable,
            "-I",
            "-c",
            SERVER,
            str(self.www),
            SERVER_HOST,
            str(SERVER_PORT),
            str(ready),
        ]
        assert self.jail is not None
        with self.log.open("ab") as log:
            server = self.jail.spawn(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.server_pid = server.pid
        self.server_start_ns = proc.process_start_ns(server.pid)
        deadline = time.monotonic() + 15
        while not ready.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SandboxError(f"the download server did not start (see {self.log})")
            time.sleep(0.05)

    def argv(self, *, workspace: Workspace, shell: str, command: str) -> list[str]:
        """The command line that runs ``command`` with ``shell`` in the sandbox."""
        binds = [
            (workspace.temporary, "/tmp"),  # noqa: S108  (names of places, not temporary files)
            (workspace.variable_temporary, "/var/tmp"),  # noqa: S108  (names of places, not temporary files)
            (workspace.home, HOME),
        ]
        flat = [path for pair in binds for path in pair]
        name = Path(shell).name
        return [
            "ip",
            "netns",
            "exec",
            self.namespace,
            sys.executable,
            "-I",
            "-S",
            "-c",
            BOOTSTRAP,
            str(len(binds)),
            *flat,
            HOME,
            shell,
            name,
            "-c",
            command,
        ]

    def stop(self) -> None:
        """Stop the server and remove the namespace (with anything left in it). Idempotent."""
        if not self._started:
            return
        self._started = False
        if self.jail is not None:
            with contextlib.suppress(Exception):
                self.jail.kill_all()
        with contextlib.suppress(Exception):
            remove_namespace(self.namespace)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
