"""``provarmor lab atomics``: run the Atomic Red Team tests this machine can run, one at a
time under a recorder, and write what happened as results and labels.

:func:`run_atomics` reads the technique files, selects the Linux tests that can run here
(:mod:`selection`; the others are recorded as skipped with their reason), installs the
allow-listed packages their dependencies name when asked to, starts the sandbox, then with
the recorder running executes each selected test (:mod:`execution`). It writes, into the
output directory:

* ``results.json``: per test its status (``ran``/``failed``/``skipped``), reason, time window,
  root process (pid and start time of the command the lab launched), every phase's process,
  the technique (ATT&CK v19 id and the v18 id the packaged table gives as ``same_as``), and
  the totals;
* ``labels.json``: the same as the lab's ground truth (:mod:`provarmor.evaluation.groundtruth`,
  kind ``atomics``), so :func:`provarmor.evaluation.labels.label_events` labels the recorded events;
* ``transcript.log``: each phase's command and output, for whoever debugs a run.

It refuses to start beside another lab run (a state file or ``provarmor-lab-*`` cgroup
exists, or another atomics run holds ``lab.lock``): each test's restore would undo the other
run's changes. Everything it creates (scratch directories under
``/var/lib/provarmor/lab/atomics``, cgroups, the namespace, snapshots) is removed at the end
and, after a crash, by :func:`provarmor.lab.cleanup`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec

from provarmor.evaluation.dataset import TRANSCRIPT_FILE
from provarmor.evaluation.groundtruth import LABELS_FILE, write_ground_truth
from provarmor.lab import proc
from provarmor.lab.atomics.arguments import Workspace
from provarmor.lab.atomics.downloads import stage
from provarmor.lab.atomics.execution import AtomicRun, Status, is_root, run_test
from provarmor.lab.atomics.groundtruth import build_ground_truth
from provarmor.lab.atomics.model import AtomicTest, Catalogue, load_catalogue
from provarmor.lab.atomics.packages import install, missing
from provarmor.lab.atomics.results import (
    AtomicRecord,
    AtomicsReport,
    ErrorRecord,
    PhaseRecord,
    technique_ids,
)
from provarmor.lab.atomics.sandbox import Sandbox
from provarmor.lab.atomics.selection import Verdict, matches, select
from provarmor.lab.environment import STATE_DIR, RunState
from provarmor.lab.jail import leftover_jails
from provarmor.lab.runner import Recorder
from provarmor.model.errors import ConfigError
from provarmor.model.time_units import ns_to_seconds

RESULTS_FILE = "results.json"
DEFAULT_TIMEOUT_S = 30.0
SCRATCH_ROOT = STATE_DIR / "atomics"


def _workspace(run_dir: Path, test: AtomicTest) -> Workspace:
    scratch = run_dir / test.test_id
    return Workspace(scratch=str(scratch), atomics=str(scratch / "atomics"))


def _record(verdict: Verdict, run: AtomicRun | None) -> AtomicRecord:
    test = verdict.test
    v19, v18 = technique_ids(test.technique_id)
    base = AtomicRecord(
        id=test.test_id,
        guid=test.guid,
        name=test.name,
        technique=v19,
        technique_v18=v18,
        technique_name=test.technique_name,
        executor=test.executor.name,
        status=str(Status.SKIPPED),
        category=str(verdict.reason or ""),
        reason=verdict.detail,
    )
    if run is None:
        return base
    command = run.command
    return msgspec.structs.replace(
        base,
        status=str(run.status),
        category="dependency-missing" if run.status is Status.SKIPPED else "",
        reason=run.reason,
        started_ns=run.started_ns,
        ended_ns=run.ended_ns,
        root_pid=command.pid if command else 0,
        root_start_ns=command.start_ns if command else 0,
        exit_code=command.exit_code if command else None,
        phases=_phase_records(run),
        restored=run.restored,
        differences=run.differences,
        processes_killed=run.killed,
    )


def _phase_records(run: AtomicRun) -> tuple[PhaseRecord, ...]:
    return tuple(
        PhaseRecord(
            phase=str(phase.phase),
            dependency=phase.dependency,
            pid=phase.pid,
            start_ns=phase.start_ns,
            started_ns=phase.started_ns,
            ended_ns=phase.ended_ns,
            exit_code=phase.exit_code,
        )
        for phase in run.phases
    )


def _transcript(verdict: Verdict, run: AtomicRun) -> str:
    lines = [f"== {verdict.test.test_id} {verdict.test.name}: {run.status} {run.reason}\n"]
    for phase in run.phases:
        lines.append(f"-- {phase.phase} exit={phase.exit_code} pid={phase.pid}\n{phase.output}\n")
    if run.differences:
        lines.append(f"!! differs after restore: {', '.join(run.differences)}\n")
    return "".join(lines)


def _install_packages(verdicts: Sequence[Verdict]) -> tuple[str, ...]:
    wanted = {
        package
        for verdict in verdicts
        if verdict.plan is not None
        for dependency in verdict.plan.dependencies
        for package in dependency.packages
    }
    absent = missing(sorted(wanted))
    if absent:
        done = install(absent)
        if done.returncode != 0:
            raise ConfigError(f"apt-get install {' '.join(absent)} failed: {done.stderr[-300:]}")
    return tuple(absent)


def _harness_failure(started: int, error: Exception) -> AtomicRun:
    return AtomicRun(
        status=Status.FAILED,
        reason=f"harness error: {type(error).__name__}: {error}"[:300],
        started_ns=started,
        ended_ns=time.time_ns(),
    )


def _execute(
    runnable: Sequence[Verdict], *, catalogue: Catalogue, run_dir: Path, timeout_s: float
) -> tuple[dict[str, AtomicRun], list[str], tuple[int, int]]:
    runs: dict[str, AtomicRun] = {}
    transcript: list[str] = []
    with Sandbox(www=run_dir / "www", log=run_dir / "server.log") as sandbox:
        for verdict in runnable:
            assert verdict.plan is not None
            started = time.time_ns()
            try:
                stage(verdict.plan.served, atomics=catalogue.atomics, www=run_dir / "www")
                run = run_test(
                    verdict.plan,
                    sandbox=sandbox,
                    atomics=catalogue.atomics,
                    timeout_s=timeout_s,
                    logs=run_dir / "logs" / verdict.test.test_id,
                )
            except Exception as error:  # one broken test never stops the run
                run = _harness_failure(started, error)
            runs[verdict.test.test_id] = run
            transcript.append(_transcript(verdict, run))
        server = (sandbox.server_pid, sandbox.server_start_ns)
    return runs, transcript, server


def _persist_state(run_id: str, run_dir: Path) -> Path:
    STATE_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    state = RunState(run_id=run_id, run_dir=str(run_dir), artifacts=(str(run_dir),), jails=())
    path = STATE_DIR / f"state-{run_id}.json"
    path.write_bytes(msgspec.json.encode(state))
    return path


def lab_busy() -> str:
    """Why a run must not start now ('' when it may): another lab run's state file or
    processes exist. Runs restore the watched system files after each step, so two at once
    would undo each other's changes (and delete each other's users)."""
    states = sorted(path.name for path in STATE_DIR.glob("state-*.json"))
    if states:
        return f"another lab run is in progress or crashed ({states[0]}; see provarmor lab cleanup)"
    groups = leftover_jails()
    if groups:
        return f"lab processes are running ({groups[0].name})"
    return ""


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """Hold ``STATE_DIR/lab.lock`` (flock) for the run: a second atomics run waits for none,
    it fails at once. The lock file is removed when the run ends (while still held; a run
    that opened the file just before checks that it locked the file still in place)."""
    STATE_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = STATE_DIR / "lab.lock"
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise ConfigError("another atomics run holds the lab lock") from error
        try:
            current = path.stat()
        except FileNotFoundError:
            current = None
        if current is None or current.st_ino != os.fstat(handle.fileno()).st_ino:
            raise ConfigError("another atomics run holds the lab lock")
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def select_tests(
    catalogue: Catalogue, *, run_dir: Path, only: Sequence[str] | None = None
) -> list[Verdict]:
    """A verdict for every Linux test (named by ``only``, when given)."""
    tests = [test for test in catalogue.linux_tests if not only or matches(test, only)]
    return [
        select(test, workspace=_workspace(run_dir, test), atomics=catalogue.atomics)
        for test in tests
    ]


def run_atomics(  # noqa: PLR0913  (the CLI's options, passed through)
    path: Path,
    *,
    recorder: Recorder,
    out_dir: Path,
    only: Sequence[str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    install_packages: bool = False,
) -> AtomicsReport:
    """Run every Linux atomic under ``path`` that can run here; see the module docstring."""
    if not is_root():
        raise ConfigError("the atomics runner needs root (namespaces, cgroups, snapshots)")
    with _exclusive():
        busy = lab_busy()
        if busy:
            raise ConfigError(f"cannot start: {busy}")
        return _run(
            path,
            recorder=recorder,
            out_dir=out_dir,
            only=only,
            timeout_s=timeout_s,
            install_packages=install_packages,
        )


def _run(  # noqa: PLR0913  (run_atomics's options)
    path: Path,
    *,
    recorder: Recorder,
    out_dir: Path,
    only: Sequence[str] | None,
    timeout_s: float,
    install_packages: bool,
) -> AtomicsReport:
    begun = time.time_ns()
    catalogue = load_catalogue(path)
    run_id = f"atomics-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
    run_dir = SCRATCH_ROOT / run_id
    verdicts = select_tests(catalogue, run_dir=run_dir, only=only)
    runnable = [verdict for verdict in verdicts if verdict.runnable]
    installed = _install_packages(runnable) if install_packages else ()
    out_dir.mkdir(parents=True, exist_ok=True)
    state = _persist_state(run_id, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    runs: dict[str, AtomicRun] = {}
    server = (0, 0)
    transcript: list[str] = []
    recorder.start()
    started = time.time_ns()
    try:
        runs, transcript, server = _execute(
            runnable, catalogue=catalogue, run_dir=run_dir, timeout_s=timeout_s
        )
    finally:
        ended = time.time_ns()
        recorder.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # only when no other run's workspace is there
            SCRATCH_ROOT.rmdir()
        with contextlib.suppress(FileNotFoundError):
            state.unlink()
    records = tuple(_record(v, runs.get(v.test.test_id)) for v in verdicts)
    report = _report(
        catalogue, records, window=(begun, started, ended), installed=installed, only=only
    )
    _write(out_dir, report, transcript)
    truth = build_ground_truth(report, run_id=run_id, server=server)
    write_ground_truth(truth, out_dir / LABELS_FILE)
    return report


def _report(
    catalogue: Catalogue,
    records: tuple[AtomicRecord, ...],
    *,
    window: tuple[int, int, int],
    installed: tuple[str, ...],
    only: Sequence[str] | None,
) -> AtomicsReport:
    begun, started, ended = window
    statuses = Counter(record.status for record in records)
    skipped = Counter(record.category for record in records if record.status == "skipped")
    return AtomicsReport(
        atomics=str(catalogue.atomics),
        host_name=proc.host_name(),
        boot_id=proc.boot_id(),
        only=tuple(only or ()),
        files=catalogue.files,
        tests=len(catalogue.tests),
        linux_tests=len(catalogue.linux_tests),
        parse_errors=tuple(
            ErrorRecord(location=error.location or "", message=error.message)
            for error in catalogue.errors
        ),
        considered=len(records),
        selected=sum(
            1
            for record in records
            if record.status != "skipped" or record.category == "dependency-missing"
        ),
        ran=statuses["ran"],
        failed=statuses["failed"],
        skipped=statuses["skipped"],
        skipped_by_reason=dict(sorted(skipped.items())),
        packages_installed=installed,
        started_ns=started,
        ended_ns=ended,
        duration_s=round(ns_to_seconds(time.time_ns() - begun), 1),
        results=records,
    )


def _write(out_dir: Path, report: AtomicsReport, transcript: Sequence[str]) -> None:
    encoded = msgspec.json.format(msgspec.json.encode(report), indent=2)
    (out_dir / RESULTS_FILE).write_bytes(encoded + b"\n")
    (out_dir / TRANSCRIPT_FILE).write_text("".join(transcript))
