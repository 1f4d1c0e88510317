"""Tests of per-process profiles built from the real nodlink attack recording."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec

from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.detection.anomaly.profile import (
    ATTRIBUTES,
    ProfilesChunk,
    ProfileTable,
    build_histories,
    build_profiles,
    context_key,
)
from provarmor.detection.anomaly.scorer import Scorer
from provarmor.model.actions import Action
from provarmor.model.event import Event

CURL_DROPPER = "lGr1O9t9OlhCkMzP"
"""The curl that downloaded the implant (/tmp/.portal-6ww3/irqbalance-d4)."""
IMPLANT = "nUXt0S1qsVBsEXaf"
"""The implant process itself."""


def test_a_profile_holds_normalised_tokens_with_one_raw_example(
    attack_events: list[Event],
) -> None:
    curl = build_profiles(attack_events)[CURL_DROPPER]
    assert curl.executable == "/usr/bin/curl"
    assert curl.exe == "/usr/bin/curl"
    assert curl.tokens["write"] == {
        "/tmp/.portal-<rand>/irqbalance-d<num>": "/tmp/.portal-6ww3/irqbalance-d4"
    }
    assert curl.tokens["net"]["connect private:<registered>"] == "10.213.0.223:8443"
    assert {"-s", "-o"} <= set(curl.tokens["arg"])
    assert set(curl.tokens) == set(ATTRIBUTES)


def test_a_process_is_seen_in_its_parents_context(attack_events: list[Event]) -> None:
    curl = build_profiles(attack_events)[CURL_DROPPER]
    assert curl.parent_exe == "/bin/sh"
    assert curl.context == context_key("/usr/bin/curl", "/bin/sh") == "/usr/bin/curl\x1e/bin/sh"
    orphan = dataclasses.replace(curl, parent_exe="")
    assert orphan.context == "/usr/bin/curl"


def test_an_exec_by_a_child_adds_a_child_token_to_its_parent(attack_events: list[Event]) -> None:
    implant = build_profiles(attack_events)[IMPLANT]
    assert implant.exe == "/tmp/.portal-<rand>/irqbalance-d<num>"
    assert {"/usr/bin/mkdir", "/usr/bin/ping", "/usr/bin/curl"} <= set(implant.tokens["child"])


def test_failed_file_accesses_are_not_recorded(attack_events: list[Event]) -> None:
    opened: dict[str, set[str]] = {}
    failed = 0
    for event in attack_events:
        if event.event.action is Action.OPEN and event.file is not None:
            if event.event.outcome == "failure":
                failed += 1
            else:
                opened.setdefault(event.process.entity_id, set()).add(event.file.path)
    assert failed > 0
    for entity_id, profile in build_profiles(attack_events).items():
        assert set(profile.tokens["read"].values()) <= opened.get(entity_id, set())


def test_an_exec_replaces_the_executable_and_arguments_and_resets_scoring(
    attack_events: list[Event], fixtures_dir: Path
) -> None:
    scorer = Scorer(load_bundle(fixtures_dir / "model-v2.bundle"))
    table = ProfileTable()
    execs = 0
    for event in attack_events:
        profile = table.observe(event)
        if profile is None:
            continue
        if event.event.action is Action.EXEC:
            execs += 1
            assert len(profile.tokens["exe"]) == 1
            assert profile.executable in profile.tokens["exe"].values()
            assert (profile.scored, profile.surprises) == ({}, [])
            assert profile.dirty
            assert profile.change_event_id == event.event.id
        scorer.score_one(profile)  # leaves scoring state for the next exec to reset
    assert execs == 39


def test_only_new_tokens_make_a_profile_dirty(attack_events: list[Event]) -> None:
    table = ProfileTable()
    for event in attack_events:
        table.observe(event)
    assert {p.entity_id for p in table.changed} == set(table.profiles)
    table.changed.clear()
    for known in table.profiles.values():
        known.dirty = False
    repeated = next(
        e for e in attack_events if e.event.action is Action.OPEN and e.event.outcome == "success"
    )
    profile = table.observe(repeated)
    assert profile is not None
    assert not profile.dirty
    assert table.changed == []
    assert profile.last_event_id == repeated.event.id


def test_an_exit_marks_the_profile_exited(attack_events: list[Event]) -> None:
    profiles = build_profiles(attack_events)
    exited = {e.process.entity_id for e in attack_events if e.event.action is Action.EXIT}
    assert len(exited) == 39
    assert {p.entity_id for p in profiles.values() if p.exited} == exited
    assert not any(p.dirty for p in profiles.values())


def test_histories_snapshot_at_powers_of_two_changes_and_end_complete(
    attack_events: list[Event],
) -> None:
    histories = build_histories(attack_events)
    profiles = build_profiles(attack_events)
    assert len(histories) == len(profiles)
    for history in histories:
        final = profiles[history[-1].entity_id]
        assert history[-1].tokens == final.tokens
        assert history[-1].changes == final.changes
        changes = [snapshot.changes for snapshot in history]
        assert changes == sorted(set(changes))
        assert all(c & (c - 1) == 0 for c in changes[:-1])
        assert history[0].tokens is not final.tokens  # copies, not the live profile


def test_the_table_taken_as_changes_and_put_back_equals_it(attack_events: list[Event]) -> None:
    """A checkpoint's chunks: a full one, then only the profiles changed (a child's exec
    changes its parent's too), put back in order into an empty table."""
    table = ProfileTable()
    copy = ProfileTable()
    decode = msgspec.msgpack.Decoder(ProfilesChunk).decode
    sizes = []
    for number, event in enumerate(attack_events):
        table.observe(event)
        table.changed.clear()
        if number == len(attack_events) - 1:  # its last chunk drops a profile
            table.forget(CURL_DROPPER)
        if number % 300 == 0 or number == len(attack_events) - 1:
            chunk = table.take_tables(full=number == 0)
            sizes.append(len(chunk.profiles))
            copy.put_tables(decode(msgspec.msgpack.encode(chunk)))
            assert [(k, dataclasses.asdict(p)) for k, p in copy.profiles.items()] == [
                (k, dataclasses.asdict(p)) for k, p in table.profiles.items()
            ]
    assert CURL_DROPPER not in copy.profiles
    assert max(sizes[1:]) < len(table.profiles), "later chunks hold the changes only"


def test_a_table_nobody_checkpoints_tracks_no_changes(attack_events: list[Event]) -> None:
    table = ProfileTable()
    for event in attack_events:
        table.observe(event)
    assert table._changed is None


def test_a_running_snapshot_is_no_behaviour(attack_events: list[Event]) -> None:
    """A ``running`` event (what /proc showed when the sensor started) makes no profile
    and adds nothing to one: the profiles are those of the stream without it."""
    snapshot = [
        msgspec.structs.replace(
            event, event=msgspec.structs.replace(event.event, action=Action.RUNNING)
        )
        for event in attack_events
        if event.event.action is Action.EXEC
    ]
    table = ProfileTable()
    assert [table.observe(event) for event in snapshot] == [None] * len(snapshot)
    assert table.profiles == {}
    with_snapshot = build_profiles([*snapshot, *attack_events])
    assert with_snapshot.keys() == build_profiles(attack_events).keys()
    assert with_snapshot[CURL_DROPPER].tokens == build_profiles(attack_events)[CURL_DROPPER].tokens
