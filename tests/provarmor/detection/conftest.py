"""Fixtures for detection tests: detectors built from YAML text, events built for rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from provarmor.detection.sigma.detector import SigmaDetector
from provarmor.detection.sigma.loader import parse_rules
from provarmor.detection.sigma.ruleset import CheckReport, build_ruleset
from provarmor.model.actions import Action
from provarmor.model.attack import load_attack_table
from provarmor.model.event import Event, ProcessRef, User
from provarmor.testing.factories import make_event

SHARED_SIGMA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "sigma"
TEST_RULES = Path(__file__).resolve().parents[2] / "data" / "sigma"


@pytest.fixture
def shared_sigma() -> Path:
    if not SHARED_SIGMA.is_dir():
        pytest.skip(f"SigmaHQ rules not found at {SHARED_SIGMA}")
    return SHARED_SIGMA


@pytest.fixture
def test_rules() -> Path:
    return TEST_RULES


def _build(text: str) -> tuple[SigmaDetector, CheckReport]:
    parsed = parse_rules(text, path="inline.yml")
    ruleset, report = build_ruleset(parsed, attack=load_attack_table())
    return SigmaDetector(ruleset), report


@pytest.fixture
def sigma() -> Callable[[str], SigmaDetector]:
    """A detector from rule YAML that must load completely."""

    def build(text: str) -> SigmaDetector:
        detector, report = _build(text)
        assert not report.errors, report.errors
        assert not report.unsupported, report.unsupported
        return detector

    return build


@pytest.fixture
def sigma_report() -> Callable[[str], CheckReport]:
    """The check report of rule YAML."""
    return lambda text: _build(text)[1]


def exec_event(
    command_line: str,
    *,
    exe: str = "/usr/bin/bash",
    parent_exe: str = "/usr/bin/bash",
    parent_command_line: str = "",
    user: str | None = None,
    cwd: str = "",
    pid: int = 100,
    ts: int = 1,
    host: str = "test-host",
    auditd: dict[str, str] | None = None,
) -> Event:
    """An exec whose ``args`` are the command line split on spaces."""
    event = make_event(
        Action.EXEC,
        pid=pid,
        ts=ts,
        exe=exe,
        args=tuple(command_line.split(" ")),
        path=exe,
        host=host,
    )
    process = msgspec.structs.replace(
        event.process,
        command_line=command_line,
        working_directory=cwd,
        user=User(id="0", name=user) if user is not None else None,
        parent=ProcessRef(
            entity_id=f"{host}-p{pid - 1}",
            pid=pid - 1,
            executable=parent_exe,
            command_line=parent_command_line,
        ),
    )
    return msgspec.structs.replace(event, process=process, auditd=auditd)


@pytest.fixture
def exec_of() -> Callable[..., Event]:
    return exec_event
