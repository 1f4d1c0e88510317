"""The per-host model archive: versioned bundles (history kept up to a bound) and the
checkpoint, on a real directory."""

from pathlib import Path

import pytest

from provarmor.detection.anomaly.bundle import load_bundle
from provarmor.model.errors import ConfigError
from provarmor.pipeline.model_archive import ModelArchive

MODEL = Path(__file__).parents[2] / "data" / "anomaly" / "model-v2.bundle"


@pytest.fixture(scope="module")
def model():
    return load_bundle(MODEL)


def test_versions_are_kept_newest_last_and_pruned_past_the_bound(tmp_path, model):
    archive = ModelArchive(tmp_path / "h1", keep=2)
    assert archive.versions() == []
    assert archive.latest() is None
    for version in (1, 2, 3):
        archive.save(model, version)
    assert archive.versions() == [2, 3]
    assert archive.pruned == 1
    version, latest = archive.latest()
    assert version == 3
    assert latest.known == model.known
    assert sorted(path.name for path in (tmp_path / "h1").iterdir()) == [
        "model-v0002.bundle",
        "model-v0003.bundle",
    ]


def test_a_damaged_latest_version_is_a_config_error_naming_it(tmp_path, model):
    archive = ModelArchive(tmp_path, keep=5)
    archive.save(model, 1)
    path = archive.path_of(1)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ConfigError) as caught:
        archive.latest()
    assert caught.value.location == str(path)


def test_checkpoint_is_replaced_whole_and_can_be_set_aside(tmp_path):
    archive = ModelArchive(tmp_path / "h2", keep=5)
    assert archive.read_checkpoint() is None
    archive.write_checkpoint(b"first")
    archive.write_checkpoint(b"second")
    assert archive.read_checkpoint() == b"second"
    assert not list((tmp_path / "h2").glob("*.tmp"))
    moved = archive.set_aside_checkpoint()
    assert moved.read_bytes() == b"second"
    assert archive.read_checkpoint() is None
