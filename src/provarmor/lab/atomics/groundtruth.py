"""An atomics run's ground truth in the lab's format (``labels.json``, kind ``atomics``).

Each test that started becomes a step (its technique, its window, whether it ran). The
processes the lab launched for its command, its ``get_prereq_command`` and its cleanup are
attacker roots (``via`` names the phase), so every process they spawned is labelled too; the
dependency checks (``prereq_command``: ``which gcc``, ``test -f``) and the download server
are listed as infrastructure, which evaluation leaves out. Pure.
"""

from __future__ import annotations

from provarmor.evaluation.groundtruth import (
    GroundTruth,
    InfraProcess,
    RootProcess,
    StepRecord,
    TechniqueRef,
)
from provarmor.lab.atomics.results import AtomicRecord, AtomicsReport
from provarmor.model.attack import load_attack_table

KIND = "atomics"
_ROOT_PHASES = {
    "command": "atomic-command",
    "get_prereq": "atomic-get-prereq",
    "cleanup": "atomic-cleanup",
}


def technique_ref(record: AtomicRecord) -> TechniqueRef:
    """The technique of ``record`` with the tactic the packaged table lists first."""
    table = load_attack_table()
    entry = table.technique(record.technique)
    tactic = ""
    if entry is not None and entry.tactics:
        found = table.tactic(entry.tactics[0])
        tactic = found.shortname if found is not None else ""
    name = entry.name if entry is not None else record.technique_name
    return TechniqueRef(id=record.technique, name=name, tactic=tactic)


def _started(record: AtomicRecord) -> bool:
    return bool(record.phases)


def _processes(
    records: list[AtomicRecord],
) -> tuple[tuple[RootProcess, ...], tuple[InfraProcess, ...]]:
    """Attacker roots (command, get_prereq, cleanup) and infrastructure (the checks)."""
    roots: list[RootProcess] = []
    infrastructure: list[InfraProcess] = []
    for record in records:
        for phase in record.phases:
            via = _ROOT_PHASES.get(phase.phase)
            if via is not None:
                roots.append(
                    RootProcess(pid=phase.pid, start_ns=phase.start_ns, step=record.id, via=via)
                )
            else:
                infrastructure.append(
                    InfraProcess(pid=phase.pid, start_ns=phase.start_ns, role="atomic-prereq")
                )
    return tuple(roots), tuple(infrastructure)


def _step(record: AtomicRecord) -> StepRecord:
    return StepRecord(
        name=record.id,
        channel="atomic",
        started_ns=record.started_ns,
        ended_ns=record.ended_ns,
        ok=record.status == "ran",
        techniques=(technique_ref(record),),
        summary=record.name,
    )


def build_ground_truth(
    report: AtomicsReport, *, run_id: str, server: tuple[int, int] = (0, 0)
) -> GroundTruth:
    """The ground truth of ``report``; ``server`` is the download server's (pid, start_ns),
    listed as infrastructure."""
    started = [record for record in report.results if _started(record)]
    roots, infrastructure = _processes(started)
    if server[0]:
        infrastructure += (InfraProcess(pid=server[0], start_ns=server[1], role="atomics-http"),)
    steps = tuple(_step(record) for record in started)
    techniques = {step.techniques[0].id: step.techniques[0] for step in steps}
    return GroundTruth(
        kind=KIND,
        name=KIND,
        seed=0,
        run_id=run_id,
        host_name=report.host_name,
        boot_id=report.boot_id,
        started_ns=report.started_ns,
        ended_ns=report.ended_ns,
        attack_start_ns=steps[0].started_ns if steps else report.started_ns,
        attack_end_ns=steps[-1].ended_ns if steps else report.ended_ns,
        attacker_roots=roots,
        steps=steps,
        completed=bool(steps) and all(step.ok for step in steps),
        techniques=tuple(techniques.values()),
        infrastructure=infrastructure,
    )
