"""The stored form of an atomics run (``results.json``) and its reader.

One :class:`AtomicRecord` per Linux test considered: its status (``ran``, ``failed`` or
``skipped``), the reason and its category (the selection's :class:`SkipReason` values, or
``dependency-missing``), the time window, the pid and /proc start time of the command
process the lab launched (the attack's root), every phase's process, and the technique in
ATT&CK v19 numbering with the v18 id from the packaged table's ``same_as`` (the same id
when the technique was not renumbered). :class:`AtomicsReport` adds the totals.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from provarmor.model.attack import load_attack_table
from provarmor.model.errors import ParseError

FORMAT_VERSION = 1


class PhaseRecord(msgspec.Struct, frozen=True, kw_only=True):
    phase: str
    dependency: int = -1
    pid: int
    start_ns: int
    started_ns: int
    ended_ns: int
    exit_code: int | None


class AtomicRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """``T1059.004-3``: technique and 1-based test number."""
    guid: str
    name: str
    technique: str
    """ATT&CK v19 id, as the atomics name it."""
    technique_v18: str
    technique_name: str
    executor: str
    status: str
    category: str = ""
    reason: str = ""
    started_ns: int = 0
    ended_ns: int = 0
    root_pid: int = 0
    root_start_ns: int = 0
    exit_code: int | None = None
    phases: tuple[PhaseRecord, ...] = ()
    restored: tuple[str, ...] = ()
    differences: tuple[str, ...] = ()
    processes_killed: int = 0


class ErrorRecord(msgspec.Struct, frozen=True, kw_only=True):
    location: str
    message: str


class AtomicsReport(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int = FORMAT_VERSION
    atomics: str
    host_name: str = ""
    boot_id: str = ""
    only: tuple[str, ...] = ()
    files: int
    tests: int
    """Tests in all technique files (every platform)."""
    linux_tests: int
    parse_errors: tuple[ErrorRecord, ...] = ()
    considered: int
    """Linux tests named by ``only`` (all of them without a filter)."""
    selected: int
    """Tests that passed selection and were started."""
    ran: int
    failed: int
    skipped: int
    skipped_by_reason: dict[str, int] = msgspec.field(default_factory=dict)
    packages_installed: tuple[str, ...] = ()
    started_ns: int
    ended_ns: int
    duration_s: float
    results: tuple[AtomicRecord, ...] = ()

    def summary_lines(self) -> list[str]:
        """A few lines for a person (the CLI prints them)."""
        lines = [
            f"{self.linux_tests} Linux tests in {self.files} files "
            f"({len(self.parse_errors)} parse errors); {self.considered} considered, "
            f"{self.selected} selected",
            f"ran {self.ran}, failed {self.failed}, skipped {self.skipped} "
            f"in {self.duration_s:.0f} s",
        ]
        lines += [
            f"  skipped {reason}: {count}" for reason, count in self.skipped_by_reason.items()
        ]
        return lines


def technique_ids(technique: str) -> tuple[str, str]:
    """(v19 id, v18 id) for a technique id from the atomics (v19 numbering)."""
    entry = load_attack_table().technique(technique)
    if entry is None:
        return technique, ""
    return entry.id, entry.same_as or entry.id


def parse_results(data: bytes, *, location: str = "results.json") -> AtomicsReport:
    """Decode ``results.json``; raises :class:`ParseError` on anything malformed."""
    try:
        report = msgspec.json.decode(data, type=AtomicsReport)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ParseError(str(error), location=location) from error
    if report.format_version != FORMAT_VERSION:
        raise ParseError(f"unknown format_version {report.format_version}", location=location)
    return report


def load_results(path: Path) -> AtomicsReport:
    return parse_results(path.read_bytes(), location=str(path))
