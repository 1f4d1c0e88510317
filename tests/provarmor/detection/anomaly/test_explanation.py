"""Tests of anomaly explanations: the nodlink attack's processes scored by the shipped v2
model fixture, explained in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.detection.anomaly.explanation import Contribution, contributions, describe
from provarmor.detection.anomaly.profile import Profile, build_profiles
from provarmor.detection.anomaly.scorer import AnomalyModel, Scorer
from provarmor.model.event import Event


@pytest.fixture(scope="module")
def model(fixtures_dir: Path) -> AnomalyModel:
    return load_bundle(fixtures_dir / "model-v2.bundle")


@pytest.fixture(scope="module")
def profiles(attack_events: list[Event]) -> dict[str, Profile]:
    return build_profiles(attack_events)


def _explain(
    model: AnomalyModel, profile: Profile, *, limit: int
) -> tuple[list[Contribution], str]:
    scored = Scorer(model).score_one(profile)
    items = contributions(model, profile, scored, limit=limit)
    return items, describe(model, profile, items)


def test_the_dropper_is_explained_by_what_it_never_did_in_training(
    model: AnomalyModel, profiles: dict[str, Profile]
) -> None:
    items, text = _explain(model, profiles["lGr1O9t9OlhCkMzP"], limit=3)
    assert [(i.attribute, i.raw, i.seen_in) for i in items] == [
        ("net", "10.213.0.223:8443", 0),
        ("write", "/tmp/.portal-6ww3/irqbalance-d4", 0),
        ("arg", "/tmp/.portal-<rand>/irqbalance-d<num>", 0),
    ]
    weights = [i.weight for i in items]
    assert weights == sorted(weights, reverse=True) and weights[-1] > 0
    assert text == (
        "/usr/bin/curl behaves unlike the benign baseline; "
        "never seen in training: connect 10.213.0.223:8443; "
        "never seen in training: write /tmp/.portal-6ww3/irqbalance-d4; "
        "never seen in training: argument /tmp/.portal-<rand>/irqbalance-d<num>"
    )


def test_a_token_other_processes_showed_is_rare_for_this_program(
    model: AnomalyModel, profiles: dict[str, Profile]
) -> None:
    shell = profiles["oBtyn7cYb7l0no4l"]
    items, text = _explain(model, shell, limit=5)
    child = next(i for i in items if i.attribute == "child" and i.token == "/usr/bin/id")
    assert child.seen_in == model.document_frequency["child /usr/bin/id"] == 3
    assert model.executables[shell.exe] == 42
    assert (
        "rare for sh: child /usr/bin/id (not in its 42 training runs; "
        f"in 3 of {model.processes} training processes)"
    ) in text
    assert "never seen in training: child /usr/bin/whoami" in text


def test_an_unseen_executable_counts_its_training_runs_not_document_frequency(
    model: AnomalyModel, profiles: dict[str, Profile]
) -> None:
    whoami = profiles["IpIVZEXNb5Fy7AgD"]
    items, text = _explain(model, whoami, limit=5)
    assert items[0].attribute == "exe"
    assert items[0].seen_in == 0
    assert "never seen in training: executable /usr/bin/whoami" in text
    assert "rare for whoami: read /etc/ld.so.cache (not in its 0 training runs" in text


def test_the_limit_caps_the_contributions(
    model: AnomalyModel, profiles: dict[str, Profile]
) -> None:
    items, text = _explain(model, profiles["k1KUsCHaXXawlCTC"], limit=2)
    assert len(items) == 2
    assert text.count("never seen in training: connect 10.213.0.109:") == 2
    assert _explain(model, profiles["k1KUsCHaXXawlCTC"], limit=0)[0] == []


def test_a_process_with_nothing_surprising_has_no_contribution(
    model: AnomalyModel, profiles: dict[str, Profile]
) -> None:
    items, text = _explain(model, profiles["0SAaj1fuh0eJZbdm"], limit=3)
    assert items == []
    assert text.startswith("/bin/sh behaves unlike the benign baseline")
