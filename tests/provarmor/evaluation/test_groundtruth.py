import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provarmor.evaluation.groundtruth import (
    GroundTruth,
    RootProcess,
    StepRecord,
    TechniqueRef,
    load_ground_truth,
    parse_ground_truth,
    write_ground_truth,
)
from provarmor.model.errors import ParseError


def test_labels_json_round_trips(tmp_path):
    truth = GroundTruth(
        kind="scenario",
        name="n",
        seed=3,
        run_id="3-x",
        started_ns=1,
        ended_ns=9,
        attacker_roots=(RootProcess(pid=5, start_ns=2, step="s", via="webshell"),),
        steps=(
            StepRecord(
                name="s",
                channel="webshell",
                started_ns=2,
                ended_ns=3,
                ok=True,
                techniques=(TechniqueRef(id="T1190", name="x", tactic="initial-access"),),
            ),
        ),
        namespaces={"provarmor-lab-abc": "c2"},
    )
    path = tmp_path / "labels.json"
    write_ground_truth(truth, path)
    assert load_ground_truth(path) == truth
    assert b'"attacker_roots"' in path.read_bytes()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"[]",
        b'{"kind": 1}',
        b'{"format_version": 99, "kind": "benign", "name": "n", '
        b'"seed": 1, "run_id": "r", "started_ns": 1, "ended_ns": 2}',
    ],
)
def test_malformed_labels_are_parse_errors_with_a_location(data):
    with pytest.raises(ParseError) as caught:
        parse_ground_truth(data, location="x/labels.json")
    assert caught.value.location == "x/labels.json"


@given(st.binary(max_size=200))
def test_garbage_raises_only_parse_errors(data):
    with contextlib.suppress(ParseError):
        parse_ground_truth(data)
