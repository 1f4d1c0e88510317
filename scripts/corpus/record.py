"""Record one chunk of the real-world benign corpus (run as root).

    sudo .venv/bin/python scripts/corpus/record.py --seed 11 --minutes 20 \
        --corpus corpus/real-world --role test

Starts the live agent (eBPF sensor, its own state directory, canonical NDJSON out), runs
``scripts/corpus/recipe.sh SEED MINUTES`` as the root of a new process tree, stops the agent,
keeps only the events of the recipe's tree (:class:`provarmor.evaluation.corpus.LineageFilter`: the
machine is shared, and other people's tests, builds and lab runs must not enter the corpus),
writes the chunk as a benign dataset with its ``recording.json`` (kept fraction, the sensor's
drop counters) and enters it in the corpus manifest with its role.

``--lock /tmp/provarmor-live.lock`` holds the shared live lock while the agent and the recipe
run (the recipe changes accounts, packages and cron, and starts servers) and lets it go
before the minutes of filtering and writing the chunk. It makes itself the subreaper of the
recipe's daemons, so any server the recipe failed to stop is stopped here, by its process id.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provarmor.agent.status import read_status
from provarmor.evaluation.corpus import (
    ROLES,
    LineageFilter,
    RecordingInfo,
    add_chunk,
    write_chunk,
    write_recording,
)
from provarmor.evaluation.dataset import TRANSCRIPT_FILE
from provarmor.lab.proc import process_start_ns
from provarmor.model.errors import ConfigError
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

HERE = Path(__file__).resolve().parent
RECIPE = HERE / "recipe.sh"
PR_SET_CHILD_SUBREAPER = 36
RING_BUFFER_PAGES = 2048
"""Per-CPU ring buffer of the eBPF sensor: apt and pytest bursts overflow the default (the
losses are counted in ``recording.json`` either way)."""


def _wait_for(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise ConfigError(f"timed out waiting for {what}")


def _our_children(exclude: set[int]) -> list[int]:
    me = os.getpid()
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == me and state != "Z":  # zombies are only reaped
            children.append(int(entry.name))
    return children


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _stop_leftovers(exclude: set[int]) -> list[str]:
    """Stop the recipe's daemons that are still running (they were re-parented to us)."""
    pids = _our_children(exclude)
    leftovers = [f"{pid} {_command_line(pid)}" for pid in pids]
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _our_children(exclude):
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        time.sleep(0.2)
    for pid in _our_children(exclude):
        os.kill(pid, signal.SIGKILL)
    while True:  # reap them
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                break
        except ChildProcessError:
            break
    return leftovers


@dataclass(frozen=True, slots=True)
class _Run:
    root_pid: int
    root_start_ns: int
    started_ns: int
    ended_ns: int
    exit: int
    counters: dict[str, int]
    leftovers: list[str]
    recipe_sha256: str


def _run_recipe(seed: int, minutes: float, work: Path, tasks: list[str]) -> _Run:
    """The recipe (a copy in work/, so that editing it cannot change a running chunk) under a
    live agent writing the whole machine's events to work/."""
    raw, state = work / "machine.ndjson", work / "state"
    recipe_copy = work / "recipe.sh"
    shutil.copy(RECIPE, recipe_copy)
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provarmor",
            "--set",
            f"agent.ebpf_perf_rb_pages={RING_BUFFER_PAGES}",
            "agent",
            "--sensor",
            "ebpf",
            "--out",
            str(raw),
            "--state-dir",
            str(state),
        ],
        stdout=(work / "agent.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(lambda: raw.exists() and raw.stat().st_size > 0, 120, "the agent's first events")
        _say(f"agent {agent.pid} recording; recipe seed {seed} for {minutes} min")
        started_ns = time.time_ns()
        recipe = subprocess.Popen(
            ["bash", str(recipe_copy), str(seed), str(minutes), *tasks],
            stdout=(work / TRANSCRIPT_FILE).open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PA_CORPUS_REPO": str(HERE.parent.parent)},
        )
        root_start_ns = process_start_ns(recipe.pid)
        exit_code = recipe.wait()
        leftovers = _stop_leftovers({agent.pid})
        ended_ns = time.time_ns()
        time.sleep(3)  # the agent drains its queue into the file
    finally:
        agent.send_signal(signal.SIGINT)
        agent.wait(timeout=120)
    status = read_status(state)  # the agent's last status, written as it stopped
    return _Run(
        root_pid=recipe.pid,
        root_start_ns=root_start_ns,
        started_ns=started_ns,
        ended_ns=ended_ns,
        exit=exit_code,
        counters=status.counters,
        leftovers=leftovers,
        recipe_sha256=hashlib.sha256(recipe_copy.read_bytes()).hexdigest(),
    )


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--corpus", type=Path, required=True, help="The corpus directory.")
    parser.add_argument("--name", help="Chunk name (default: chunk-SEED).")
    parser.add_argument(
        "--task",
        action="append",
        default=[],
        help="Run just this recipe task (repeatable; e.g. make_build): for small recordings.",
    )
    parser.add_argument("--role", choices=ROLES, default="test")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="Where the raw recording goes.",
    )
    parser.add_argument(
        "--keep-raw", action="store_true", help="Keep the whole machine's recording."
    )
    parser.add_argument(
        "--lock",
        type=Path,
        help="Hold this lock file (flock) while recording, not while writing the chunk.",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.stderr.write("record.py: run as root (the agent and the recipe need it)\n")
        return 2
    name = args.name or f"chunk-{args.seed:02d}"
    work = args.work / f"pa-corpus-recording-{name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    raw = work / "machine.ndjson"
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    lock = args.lock.open("a") if args.lock else None
    try:
        if lock is not None:
            _say(f"waiting for {args.lock}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        run = _run_recipe(args.seed, args.minutes, work, args.task)
    finally:
        if lock is not None:
            lock.close()  # the lock goes with it
    _say(f"recipe exited {run.exit}; leftovers stopped: {run.leftovers}")

    lineage = LineageFilter(root_pid=run.root_pid, root_start_ns=run.root_start_ns)
    report = IngestReport(source=str(raw))
    chunk = args.corpus / name
    meta = write_chunk(
        chunk,
        lineage.filter(read_ndjson(raw, report=report, host=HostContext())),
        name=name,
        seed=args.seed,
        started_ns=run.started_ns,
        ended_ns=run.ended_ns,
        completed=run.exit == 0,
        sensor="ebpf",
    )
    recording = RecordingInfo(
        recipe="scripts/corpus/recipe.sh",
        recipe_sha256=run.recipe_sha256,
        ring_buffer_pages=RING_BUFFER_PAGES,
        seed=args.seed,
        minutes=args.minutes,
        root_pid=run.root_pid,
        root_start_ns=run.root_start_ns,
        started_ns=run.started_ns,
        ended_ns=run.ended_ns,
        recipe_exit=run.exit,
        machine_events=lineage.seen,
        machine_rejected=report.rejected,
        kept_events=lineage.kept,
        kept_processes=len(lineage.processes),
        kept_gaps=lineage.gaps,
        leftovers_stopped=tuple(run.leftovers),
        sensor_counters=run.counters,
    )
    write_recording(chunk, recording)
    shutil.copy(work / TRANSCRIPT_FILE, chunk / TRANSCRIPT_FILE)
    add_chunk(args.corpus, chunk, role=args.role)
    _say(
        f"{name}: kept {lineage.kept:,} of {lineage.seen:,} machine events "
        f"({recording.kept_fraction:.1%}), {len(lineage.processes):,} processes, rejected "
        f"{report.rejected}; sensor lost {run.counters.get('sensor.lost', 0)}, queue dropped "
        f"{run.counters.get('queue.dropped', 0)}; dataset {meta.events:,} events"
    )
    if not args.keep_raw:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
