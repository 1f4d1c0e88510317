"""The live eBPF source: runs bpftrace as a child process and yields canonical events.

``EbpfSource(settings).start()`` checks the prerequisites (raising
:class:`~provarmor.sources.ebpf.kernel.EbpfUnavailable` with what is missing), generates the
program for this kernel, starts bpftrace and returns once every probe is attached and the
process table has been seeded from ``/proc`` (the processes already running then come out
first, as ``running`` events: :mod:`provarmor.sources.running`). :meth:`EbpfSource.events`
yields events until bpftrace ends; :meth:`EbpfSource.stop` ends it cleanly (SIGINT, so
bpftrace runs ``END`` and flushes the last socket counts), after which ``events()`` drains
what is left and returns.

bpftrace is started through ``/bin/sh -c 'exec "$@" "$$"'`` so that its own pid is known
before it starts and can be passed as the last program parameter: the program filters out
the agent and the other excluded pids (``$1``..``$4``) and bpftrace itself (``$5``).
Two threads take the output: a reader that only moves bpftrace's output from its pipe
(enlarged to :data:`PIPE_BYTES`) into memory, and a decoder that turns it into events and
hands them over through a bounded buffer. bpftrace writes every line straight to the pipe
and stops reading the kernel's per-CPU buffers while the pipe is full, so the reader must
never wait for decoding: bursts (a package install's man-db run opens ~70k files in a few
seconds) wait as raw bytes, up to ``read_buffer_bytes``. When that or the event buffer is
full (the consumer lags for long), reading stops, the kernel buffers fill and bpftrace
reports the loss, which becomes a ``gap`` event. The decoder decodes records in kernel-time
order once they are ``reorder_ms`` old (:mod:`provarmor.sources.ebpf.reorder`); when no
output comes for that long, its thread lets the waiting ones out (every event arrives at
most about ``reorder_ms`` later than without the stage).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import IO

from provarmor.model.event import Event
from provarmor.model.time_units import ms_to_ns
from provarmor.sources.ebpf.decoder import DecoderContext, EbpfCounters, EbpfDecoder
from provarmor.sources.ebpf.kernel import (
    BTF,
    TRACEFS,
    EbpfUnavailable,
    check_prerequisites,
    detect_features,
)
from provarmor.sources.ebpf.program import generate_program
from provarmor.sources.ebpf.settings import EbpfSettings
from provarmor.sources.owngroup import own_group_id
from provarmor.sources.procfs import iter_processes, read_clock, read_host_identity
from provarmor.sources.procnet import read_server_roles

log = logging.getLogger(__name__)

_LAUNCH = 'exec "$@" "$$"'
"""``sh -c`` script: replace the shell with bpftrace, passing the shell's pid (which becomes
bpftrace's) as the last program argument."""
_STDERR_TAIL = 40
_NOISE = ("couldn't set RLIMIT_MEMLOCK",)
"""stderr lines that are not problems (modern kernels account BPF memory to cgroups)."""
_JOIN_TIMEOUT_S = 10.0
_READ_BYTES = 1 << 20
PIPE_BYTES = 1 << 22
"""Capacity asked for bpftrace's stdout pipe."""
_SMALL_READ = 1 << 16
_GATHER_S = 0.01
"""After a small read, the reader waits this long: at low rates bpftrace writes one line
at a time, and waking two threads per line costs more than decoding it (the pipe holds
far more than arrives meanwhile)."""


class EbpfSource:
    """Live events from this host's kernel, through bpftrace (see the module docstring)."""

    def __init__(
        self,
        settings: EbpfSettings | None = None,
        *,
        proc: Path = Path("/proc"),
        tap: Callable[[bytes], None] | None = None,
    ) -> None:
        """``tap``, when given, sees every raw output line first (to record fixtures)."""
        self.settings = settings or EbpfSettings()
        self._proc = proc
        self._tap = tap
        self._process: subprocess.Popen[bytes] | None = None
        self._decoder: EbpfDecoder | None = None
        self._threads: list[threading.Thread] = []
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._ready = threading.Event()
        self._drained = threading.Event()
        self._cond = threading.Condition()
        self._batches: deque[list[Event] | None] = deque()
        self._queued = 0
        self._raw_cond = threading.Condition()
        self._raw: deque[bytes | None] = deque()
        self._raw_bytes = 0
        self.backlog_peak_bytes = 0
        """The most raw output that waited for the decoder at once (bursts)."""
        self._stopping = False
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL)
        """The last lines bpftrace wrote to stderr (for error messages and diagnostics)."""

    # -- public API -----------------------------------------------------------------------

    @property
    def counters(self) -> EbpfCounters:
        """Events, losses, parse errors and per-action counts of this run."""
        if self._decoder is None:
            return EbpfCounters()
        return self._decoder.counters

    @property
    def context(self) -> DecoderContext | None:
        """The host, clock and id prefix this run decodes with (``None`` before start)."""
        return self._decoder.context if self._decoder is not None else None

    @property
    def backlog_bytes(self) -> int:
        """bpftrace output read but not decoded yet."""
        return self._raw_bytes

    @property
    def bpftrace_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start bpftrace; return once every probe is attached. Raises
        :class:`EbpfUnavailable` when the host cannot run it or bpftrace fails to start."""
        if self._process is not None:
            raise RuntimeError("EbpfSource.start() called twice")
        settings = self.settings
        binary = check_prerequisites(
            bpftrace=settings.bpftrace,
            btf=BTF,
            tracefs=TRACEFS,
            mount_tracefs=settings.mount_tracefs,
        )
        excluded = settings.excluded_pids(os.getpid())
        own = settings.program.own_cgroup or own_group_id()
        options = replace(settings.program, own_cgroup=own)
        text = generate_program(options, detect_features(TRACEFS))
        self._workdir = tempfile.TemporaryDirectory(prefix="provarmor-ebpf-")
        program = Path(self._workdir.name) / "sensor.bt"
        program.write_text(text)
        self._decoder = EbpfDecoder(self._context())
        command = [binary, "--no-warnings", "-B", "none", "-f", "json", str(program)]
        self._process = subprocess.Popen(
            ["/bin/sh", "-c", _LAUNCH, "sh", *command, *(str(pid) for pid in excluded)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._environment(),
            start_new_session=True,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        self._spawn("ebpf-reader", self._read_stdout, self._process.stdout)
        self._spawn("ebpf-decoder", self._decode_output)
        self._spawn("ebpf-stderr", self._read_stderr, self._process.stderr)
        self._wait_ready()

    def events(self) -> Iterator[Event]:
        """Events as they are decoded, until bpftrace has ended and everything is drained."""
        while True:
            with self._cond:
                while not self._batches:
                    if self._process is None:
                        return
                    self._cond.wait()
                batch = self._batches.popleft()
                if batch is not None:
                    self._queued -= len(batch)
                self._cond.notify_all()
            if batch is None:
                return
            yield from batch

    def stop(self) -> None:
        """Stop bpftrace cleanly and return once its last line is decoded. Idempotent.

        On SIGINT bpftrace first detaches its ~100 probes (the kernel waits for an RCU grace
        period per tracepoint: ~7 s on two cores), then runs ``END``, which prints the last
        socket counts and the end marker.
        """
        process = self._process
        if process is None or self._stopping:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        with self._raw_cond:
            self._raw_cond.notify_all()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        if not self._drained.wait(self.settings.stop_timeout_s):
            log.warning("bpftrace did not finish on SIGINT; killing it")
            process.kill()
        try:
            process.wait(timeout=_JOIN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for thread in self._threads:
            thread.join(timeout=_JOIN_TIMEOUT_S)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> EbpfSource:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------

    def _context(self) -> DecoderContext:
        host = read_host_identity(self._proc)
        offset = time.time_ns() - time.monotonic_ns()
        return DecoderContext(
            host=host,
            clock=read_clock(self._proc),
            monotonic_offset_ns=offset,
            id_prefix=f"ebpf-{host.boot_id[:8]}-{time.time_ns():x}-",
            park_ns=2 * ms_to_ns(self.settings.program.flush_ms),
            reorder_ns=ms_to_ns(self.settings.reorder_ms),
        )

    def _environment(self) -> dict[str, str]:
        settings = self.settings
        env = dict(os.environ)
        env["BPFTRACE_STRLEN"] = str(settings.strlen)
        env["BPFTRACE_MAP_KEYS_MAX"] = str(settings.map_keys_max)
        if settings.perf_rb_pages:
            env["BPFTRACE_PERF_RB_PAGES"] = str(settings.perf_rb_pages)
        return env

    def _spawn(self, name: str, target: Callable[..., None], *arguments: object) -> None:
        thread = threading.Thread(target=target, args=arguments, daemon=True, name=name)
        thread.start()
        self._threads.append(thread)

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.settings.start_timeout_s
        while not self._ready.wait(0.1):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                for thread in self._threads:
                    thread.join(timeout=_JOIN_TIMEOUT_S)
                reason = "\n".join(self.stderr_tail) or f"exit status {self._process.returncode}"
                raise EbpfUnavailable(f"bpftrace did not start: {reason}")

    def _read_stdout(self, stream: IO[bytes]) -> None:
        """Move bpftrace's output into memory as fast as it comes (one ``read`` takes many
        lines), waiting only while ``read_buffer_bytes`` are already waiting."""
        limit = self.settings.read_buffer_bytes
        try:
            with stream:
                _enlarge_pipe(stream.fileno())
                while chunk := os.read(stream.fileno(), _READ_BYTES):
                    with self._raw_cond:
                        while self._raw_bytes >= limit and not self._stopping:
                            self._raw_cond.wait()
                        self._raw.append(chunk)
                        self._raw_bytes += len(chunk)
                        self.backlog_peak_bytes = max(self.backlog_peak_bytes, self._raw_bytes)
                        self._raw_cond.notify_all()
                    if len(chunk) < _SMALL_READ:
                        time.sleep(_GATHER_S)  # let lines gather: one wake-up for many
        finally:
            with self._raw_cond:
                self._raw.append(None)
                self._raw_cond.notify_all()

    def _chunks(self) -> Iterator[bytes]:
        """What the reader moved, in order, until the output ended; an empty chunk each time
        nothing came for ``reorder_ms`` (records waiting for older ones can then go)."""
        idle_s = self.settings.reorder_ms / 1000 or None
        while True:
            with self._raw_cond:
                chunk = (
                    self._raw.popleft() if self._raw_cond.wait_for(self._has_raw, idle_s) else b""
                )
                if chunk:
                    self._raw_bytes -= len(chunk)
                    self._raw_cond.notify_all()
            if chunk is None:
                return
            yield chunk

    def _has_raw(self) -> bool:
        return bool(self._raw)

    def _decode_output(self) -> None:
        """Decode the output line by line and hand each chunk's events over as one batch."""
        decoder = self._decoder
        assert decoder is not None
        number = 0
        pending = b""
        try:
            for chunk in self._chunks():
                batch: list[Event] = []
                if not chunk:
                    batch = decoder.idle()
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    number += 1
                    batch += self._feed(decoder, line, number)
                if batch:
                    self._put(batch)
            if pending:
                self._put(self._feed(decoder, pending, number + 1))
        finally:
            if not decoder.ended:
                log.warning("bpftrace output ended before its END block ran")
            self._finish(decoder)

    def _feed(self, decoder: EbpfDecoder, line: bytes, number: int) -> list[Event]:
        if self._tap is not None:
            self._tap(line + b"\n")
        events = decoder.feed(line, number)
        if decoder.started and not self._ready.is_set():
            events += self._seed(decoder)
        return events

    def _seed(self, decoder: EbpfDecoder) -> list[Event]:
        """Seed the process table from ``/proc``; the ``running`` events of what it added
        (when ``running_events``)."""
        events: list[Event] = []
        if self.settings.seed_from_proc:
            processes = list(iter_processes(clock=decoder.context.clock, proc=self._proc))
            roles = None
            if self.settings.running_events:
                roles = read_server_roles((info.pid for info in processes), proc=self._proc)
            untraced = {*self.settings.excluded_pids(os.getpid()), self.bpftrace_pid or 0}
            events = decoder.seed(processes, roles, unreported=untraced)
        self._ready.set()
        return events

    def _finish(self, decoder: EbpfDecoder) -> None:
        """The last events, then the end-of-stream marker for :meth:`events`."""
        final = decoder.finish()
        with self._cond:
            if final:
                self._batches.append(final)
                self._queued += len(final)
            self._batches.append(None)
            self._cond.notify_all()
        self._drained.set()

    def _put(self, events: list[Event]) -> None:
        with self._cond:
            while self._queued >= self.settings.queue_events and not self._stopping:
                self._cond.wait()
            self._batches.append(events)
            self._queued += len(events)
            self._cond.notify_all()

    def _read_stderr(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip()
                if line and not any(noise in line for noise in _NOISE):
                    self.stderr_tail.append(line)
                    log.debug("bpftrace: %s", line)


def _enlarge_pipe(fd: int) -> None:
    """Ask for a :data:`PIPE_BYTES` pipe, else the largest the kernel grants (without
    ``CAP_SYS_RESOURCE``: ``fs.pipe-max-size``, 1 MiB by default)."""
    size = PIPE_BYTES
    while size > _READ_BYTES >> 4:
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
            return
        except OSError:
            size //= 2
    log.debug("bpftrace's pipe keeps its size")
