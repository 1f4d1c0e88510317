"""A lab run's own processes, cut out of a recording of a shared machine.

``provarmor lab run`` records the whole machine. Where other people work on the same
machine (builds, test suites, database clients), their activity lands in the lab's
datasets, and an incident it raises would be counted as a false incident of the lab run.
:func:`keep_lab_tree` writes a copy of a dataset with only the lab's process tree
(:class:`LabTree`):

* every process the ``lab run`` process (``runner_pid``: its pid, recorded by whoever
  started it) forked while recording, and their descendants: the benign workloads, the
  ``launch`` steps of a scenario and everything the attacker started from them;
* the lab's servers that were already running when the recording began (the web
  application and the observed sshds, named by pid in the run's metadata), and their
  descendants: the web shell's children, the lateral-movement logins;
* host-wide ``gap`` events (the sensor lost records of unknown processes).

The cut reads no attacker label: the attack stays among all the lab's benign processes,
as it would on a machine of its own. The entity labels are copied unchanged, so an
attacker process the cut lost would still count against recall.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from provarmor.evaluation.dataset import (
    ACTIONS_FILE,
    ENTITY_LABELS_FILE,
    EVENTS_FILE,
    META_FILE,
    TRANSCRIPT_FILE,
    load_dataset,
)
from provarmor.evaluation.groundtruth import LABELS_FILE
from provarmor.model.actions import Action
from provarmor.model.errors import ConfigError
from provarmor.model.event import Event
from provarmor.model.time_units import seconds_to_ns
from provarmor.sources.base import IngestReport

TREE_FILE = "lab-tree.json"
"""What the cut kept, beside the cut dataset."""
SERVER_START_SLACK_NS = seconds_to_ns(2)
"""A server must have started before the recording (plus this slack for /proc's
granularity): a later process that reuses its pid is not the server."""


@dataclass(slots=True)
class LabTree:
    """The lab's processes in a recording: :meth:`see` every event first, then
    :meth:`members`. Two passes, because the sensor's per-CPU buffers may deliver a
    child's fork before its parent's."""

    runner_pid: int
    servers: frozenset[int]
    recording_start_ns: int
    seen: int = 0
    gaps: int = 0
    _children: dict[str, set[str]] = field(default_factory=dict)
    _roots: set[str] = field(default_factory=set)

    def see(self, event: Event) -> None:
        self.seen += 1
        process = event.process
        if not process.entity_id:
            self.gaps += event.event.action == Action.GAP
            return
        parent = process.parent
        if parent is not None and parent.pid == self.runner_pid:
            self._roots.add(process.entity_id)  # forked by the lab while it recorded
        elif parent is not None and parent.entity_id:
            self._children.setdefault(parent.entity_id, set()).add(process.entity_id)
        if (
            process.pid in self.servers
            and process.start <= self.recording_start_ns + SERVER_START_SLACK_NS
        ):
            self._roots.add(process.entity_id)  # a lab server running before the recording

    def members(self) -> set[str]:
        found = set(self._roots)
        pending = list(found)
        while pending:
            for child in self._children.get(pending.pop(), ()):
                if child not in found:
                    found.add(child)
                    pending.append(child)
        return found


def _kept(members: set[str], events: Iterable[Event]) -> Iterator[Event]:
    """The members' events and host-wide ``gap`` events, in the recorded order."""
    for event in events:
        entity = event.process.entity_id
        if entity in members or (not entity and event.event.action == Action.GAP):
            yield event


class LabTreeReport(msgspec.Struct, frozen=True, kw_only=True):
    """``lab-tree.json``: how the cut dataset was made."""

    source: str
    runner_pid: int
    servers: list[int]
    machine_events: int
    kept_events: int
    kept_processes: int
    kept_gaps: int


def keep_lab_tree(source: Path, target: Path, *, runner_pid: int) -> LabTreeReport:
    """Write ``source`` (a lab dataset) to ``target`` with only the lab's process tree."""
    dataset = load_dataset(source)
    if target.exists():
        raise ConfigError(f"{target} exists: remove it to cut the dataset again")
    truth = dataset.truth
    servers = frozenset(
        [*(p.pid for p in truth.infrastructure), *([truth.web_pid] if truth.web_pid else [])]
    )
    tree = LabTree(runner_pid=runner_pid, servers=servers, recording_start_ns=truth.started_ns)
    for event in dataset.events():
        tree.see(event)
    members = tree.members()
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    encoder = msgspec.json.Encoder()
    report = IngestReport(source=str(source / EVENTS_FILE))
    kept = 0
    with gzip.open(partial / EVENTS_FILE, "wb", compresslevel=6) as out:
        for event in _kept(members, dataset.events(report)):
            out.write(encoder.encode(event) + b"\n")
            kept += 1
    for name in (LABELS_FILE, ENTITY_LABELS_FILE, TRANSCRIPT_FILE, ACTIONS_FILE):
        if (source / name).exists():
            shutil.copyfile(source / name, partial / name)
    meta = msgspec.structs.replace(dataset.meta, events=kept, rejected=report.rejected)
    summary = LabTreeReport(
        source=str(source),
        runner_pid=runner_pid,
        servers=sorted(servers),
        machine_events=tree.seen,
        kept_events=kept,
        kept_processes=len(members),
        kept_gaps=tree.gaps,
    )
    for name, value in ((META_FILE, meta), (TREE_FILE, summary)):
        (partial / name).write_bytes(
            msgspec.json.format(msgspec.json.encode(value), indent=2) + b"\n"
        )
    partial.rename(target)
    return summary
