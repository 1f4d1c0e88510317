import gzip
import shutil

import pytest

from provarmor.evaluation.dataset import (
    ENTITY_LABELS_FILE,
    EVENTS_FILE,
    META_FILE,
    finish_dataset,
    load_dataset,
)
from provarmor.evaluation.groundtruth import LABELS_FILE
from provarmor.model.errors import ConfigError, ParseError


@pytest.fixture
def scenario(data_dir):
    return data_dir / "lab" / "nodlink-ubuntu-seed1"


def test_load_real_dataset(scenario):
    dataset = load_dataset(scenario)
    assert dataset.meta.name == "nodlink-ubuntu"
    assert dataset.meta.kind == "scenario"
    assert dataset.truth.completed
    events = list(dataset.events())
    assert len(events) == dataset.meta.events
    assert dataset.labels.processes
    assert set(dataset.labels.processes) <= {e.process.entity_id for e in events}


def test_labels_never_inside_event_data(scenario):
    text = gzip.decompress((scenario / EVENTS_FILE).read_bytes())
    for word in (b"malicious", b"is_warn", b"attacker", b"label"):
        assert word not in text


def test_finish_dataset_derives_labels_from_recording(scenario, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    shutil.copy(scenario / LABELS_FILE, out / LABELS_FILE)
    recorded = out / "events.ndjson"
    recorded.write_bytes(gzip.decompress((scenario / EVENTS_FILE).read_bytes()))
    meta = finish_dataset(out, recorded=recorded, sensor="ebpf")
    assert not recorded.exists()
    assert meta.events == load_dataset(scenario).meta.events
    assert (out / ENTITY_LABELS_FILE).read_bytes() == (scenario / ENTITY_LABELS_FILE).read_bytes()


def test_incomplete_or_bad_dataset_is_a_clear_error(scenario, tmp_path):
    with pytest.raises(ConfigError, match="not a dataset"):
        load_dataset(tmp_path / "nope")
    broken = tmp_path / "broken"
    shutil.copytree(scenario, broken)
    (broken / ENTITY_LABELS_FILE).unlink()
    with pytest.raises(ConfigError, match=r"missing entity-labels\.json"):
        load_dataset(broken)
    shutil.copy(scenario / ENTITY_LABELS_FILE, broken / ENTITY_LABELS_FILE)
    (broken / META_FILE).write_text("{not json")
    with pytest.raises(ParseError):
        load_dataset(broken)
