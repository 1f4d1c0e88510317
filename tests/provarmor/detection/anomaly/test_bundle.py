import pytest

from provarmor.detection.anomaly.bundle import FORMAT_VERSION, dump_bundle, load_bundle, save_bundle
from provarmor.detection.anomaly.scorer import Scorer
from provarmor.model.errors import ConfigError


def _ratios(model, profiles):
    for profile in profiles:
        profile.reset_scoring()
    return [scored.ratio for scored in Scorer(model).score(profiles)]


def test_train_save_load_score_round_trip(small_model, benign_split, tmp_path):
    validation = [history[-1] for history in benign_split[1]]
    path = tmp_path / "model.bundle"
    digest = save_bundle(small_model, path)
    loaded = load_bundle(path)
    assert _ratios(small_model, validation) == _ratios(loaded, validation)
    assert loaded.threshold == small_model.threshold
    assert loaded.known == small_model.known
    assert loaded.metadata["bundle_digest"] == digest
    assert loaded.metadata["threshold_method"].startswith("quantile 0.995 x 1 of the scores")


def test_bundle_records_version_counts_and_quantiles(small_model, tmp_path):
    path = tmp_path / "model.bundle"
    save_bundle(small_model, path)
    metadata = load_bundle(path).metadata
    assert path.read_bytes().startswith(b'provarmor-anomaly-model\n{"format_version":2,')
    assert metadata["training_processes"] > 500
    assert 0 < metadata["validation_behaviours"] <= metadata["validation_processes"]
    assert set(metadata["validation_quantiles"]) == {"q0.5", "q0.9", "q0.99", "q0.999", "q1"}
    assert metadata["parameters"]["top_tokens"] == 3


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_damaged_bundle_is_a_config_error_naming_the_file(small_model, tmp_path, damage):
    data = bytearray(dump_bundle(small_model))
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"provarmor-anomaly-model\n{not json")
    path = tmp_path / "broken.bundle"
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as caught:
        load_bundle(path)
    assert caught.value.location == str(path)


def test_missing_bundle_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_bundle(tmp_path / "absent.bundle")


def test_format_1_bundle_is_refused_with_a_retrain_hint(fixtures_dir):
    path = fixtures_dir / "model-v1.bundle"
    with pytest.raises(ConfigError, match=r"format 1 is not supported.*provarmor train") as caught:
        load_bundle(path)
    assert caught.value.location == str(path)


def test_format_2_fixture_loads_and_scores(benign_split, fixtures_dir):
    model = load_bundle(fixtures_dir / f"model-v{FORMAT_VERSION}.bundle")
    assert model.metadata["datasets"][0]["name"] == "benign-mix"
    validation = [history[-1] for history in benign_split[1]]
    ratios = _ratios(model, validation)
    assert all(ratio >= 0.0 for ratio in ratios)
    assert sum(ratio >= 1.0 for ratio in ratios) <= 2
