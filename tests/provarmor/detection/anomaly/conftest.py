"""Fixtures for the anomaly model tests: real lab recordings and one small trained model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from provarmor.detection.anomaly.profile import Profile, build_histories
from provarmor.detection.anomaly.scorer import AnomalyModel
from provarmor.detection.anomaly.settings import TrainingSettings
from provarmor.detection.anomaly.train import TrainingData, split_by_time, train_model
from provarmor.model.event import Event
from provarmor.sources.base import HostContext, IngestReport
from provarmor.sources.ndjson import read_ndjson

DATA = Path(__file__).resolve().parents[3] / "data"
BENIGN = DATA / "lab" / "benign-seed2"
ATTACK = DATA / "lab" / "nodlink-ubuntu-seed1"
FIXTURES = DATA / "anomaly"

SMALL = TrainingSettings(seed=3)
"""The default counting model (trains in about a second on the 20 s benign fixture)."""


def events_of(dataset: Path) -> list[Event]:
    report = IngestReport(source=str(dataset))
    return list(read_ndjson(dataset / "events.ndjson.gz", report=report, host=HostContext()))


def attacker_processes(dataset: Path) -> set[str]:
    """Ground truth, read by TESTS only to check what the detector found."""
    return set(json.loads((dataset / "entity-labels.json").read_text())["processes"])


@pytest.fixture(scope="session")
def small_settings() -> TrainingSettings:
    return SMALL


@pytest.fixture(scope="session")
def benign_events() -> list[Event]:
    return events_of(BENIGN)


@pytest.fixture(scope="session")
def attackers() -> set[str]:
    return attacker_processes(ATTACK)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def benign_split(
    benign_events: list[Event],
) -> tuple[list[Sequence[Profile]], list[Sequence[Profile]]]:
    return split_by_time(build_histories(benign_events), 0.2)


@pytest.fixture(scope="session")
def small_model(
    benign_split: tuple[list[Sequence[Profile]], list[Sequence[Profile]]],
) -> AnomalyModel:
    training, validation = benign_split
    return train_model(TrainingData(training=training, validation=validation), SMALL)


@pytest.fixture(scope="session")
def attack_events() -> list[Event]:
    return events_of(ATTACK)
