"""The ground truth a lab run writes next to its dataset (``labels.json``).

It is recorded out of band, by the lab itself, never read from the events: which processes
the lab started or had started as the attacker (with pid and start time), which servers'
children during which window are the attacker's, which files the lab tampered with, when
each step ran with which ATT&CK techniques, and what the run created. The lab's own
infrastructure processes are listed separately so evaluation can leave them out.
:func:`provarmor.evaluation.labels.label_events` turns it plus the recorded events into labels.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from provarmor.model.errors import ParseError

FORMAT_VERSION = 1
LABELS_FILE = "labels.json"
"""The ground truth's file name in a dataset directory."""


class TechniqueRef(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    tactic: str


class StepRecord(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    channel: str
    started_ns: int
    ended_ns: int
    ok: bool
    techniques: tuple[TechniqueRef, ...]
    summary: str = ""


class RootProcess(msgspec.Struct, frozen=True, kw_only=True):
    """A process the lab knows to be the attacker's: it and all its descendants are."""

    pid: int
    start_ns: int
    step: str
    via: str
    """``webshell`` (the shell the web application started for an attack request) or
    ``launch`` (started by the lab as the attacker)."""
    executable: str = ""


class Spawner(msgspec.Struct, frozen=True, kw_only=True):
    """A server whose children started in ``[from_ns, to_ns]`` are the attacker's (the lab
    host's sshd while the attacker logs in to it)."""

    pid: int
    start_ns: int
    from_ns: int
    to_ns: int
    role: str
    step: str


class InfraProcess(msgspec.Struct, frozen=True, kw_only=True):
    pid: int
    start_ns: int
    role: str


class EndpointRef(msgspec.Struct, frozen=True, kw_only=True):
    ip: str
    port: int
    role: str
    transport: str = "tcp"


class BenignSession(msgspec.Struct, frozen=True, kw_only=True):
    workload: str
    started_ns: int
    ended_ns: int
    ok: bool
    error: str = ""


class GroundTruth(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int = FORMAT_VERSION
    kind: str
    """``scenario`` or ``benign``."""
    name: str
    seed: int
    run_id: str
    host_name: str = ""
    boot_id: str = ""
    started_ns: int
    ended_ns: int
    attack_start_ns: int = 0
    attack_end_ns: int = 0
    title: str = ""
    root_cause: str = ""
    attacker_roots: tuple[RootProcess, ...] = ()
    spawners: tuple[Spawner, ...] = ()
    exec_roots: tuple[str, ...] = ()
    """Paths the lab tampered with: a process executing one is an attacker root."""
    steps: tuple[StepRecord, ...] = ()
    """The steps performed, in order (a run stops at the first step that failed)."""
    completed: bool = False
    """Every planned step ran and succeeded."""
    techniques: tuple[TechniqueRef, ...] = ()
    files: tuple[str, ...] = ()
    """Paths the scenario planned to create or change."""
    endpoints: tuple[EndpointRef, ...] = ()
    """Addresses the attacker's side used (C2, sinks, lateral target, its client ports)."""
    infrastructure: tuple[InfraProcess, ...] = ()
    web_pid: int = 0
    users: dict[str, str] = msgspec.field(default_factory=dict)
    """Lab users by role (``web``, ``ops``, ``dev``)."""
    namespaces: dict[str, str] = msgspec.field(default_factory=dict)
    """Lab namespace name -> role."""
    addresses: dict[str, str] = msgspec.field(default_factory=dict)
    """Role -> lab address."""
    sessions: tuple[BenignSession, ...] = ()


def write_ground_truth(truth: GroundTruth, path: Path) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(truth), indent=2) + b"\n")


def parse_ground_truth(data: bytes, *, location: str = LABELS_FILE) -> GroundTruth:
    """Decode ``labels.json``; raises :class:`ParseError` on anything malformed."""
    try:
        truth = msgspec.json.decode(data, type=GroundTruth)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ParseError(str(error), location=location) from error
    if truth.format_version != FORMAT_VERSION:
        raise ParseError(f"unknown format_version {truth.format_version}", location=location)
    return truth


def load_ground_truth(path: Path) -> GroundTruth:
    return parse_ground_truth(path.read_bytes(), location=str(path))
