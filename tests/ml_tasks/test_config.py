"""The segmentation config: shipped defaults, partial files, and errors that name the key."""

from __future__ import annotations

import pytest

from ml_tasks.config import DEFAULT_CONFIG_PATH, ConfigError, SegmentationConfig, load_config


def test_the_shipped_file_states_the_defaults():
    assert load_config(DEFAULT_CONFIG_PATH) == SegmentationConfig()


def test_a_file_only_needs_the_keys_it_changes(tmp_path):
    path = tmp_path / "segmentation.yml"
    path.write_text("algorithm:\n  name: gmm\nacceptance:\n  min_silhouette: 0.3\n")
    config = load_config(path)
    assert config.algorithm.name == "gmm"
    assert config.acceptance.min_silhouette == 0.3
    assert config.selection == SegmentationConfig().selection


def test_the_environment_variable_points_at_the_file(tmp_path, monkeypatch):
    path = tmp_path / "mine.yml"
    path.write_text("random_state: 7\n")
    monkeypatch.setenv("SEGMENTS_ML_CONFIG", str(path))
    assert load_config().random_state == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("selection:\n  k_maks: 9\n", r"selection: unknown key\(s\) \['k_maks'\]"),
        ("selection:\n  k_max: many\n", "selection.k_max: expected a number, got 'many'"),
        ("selection:\n  k_max: 7.5\n", "selection.k_max: expected a whole number"),
        ("algorithm:\n  name: dbscan\n", "algorithm.name must be one of"),
        ("features:\n  log1p: total_spend\n", "features.log1p: expected a list"),
        ("selection:\n  k_min: 9\n", "k_min <= k_max"),
        ("preprocessing:\n  pca_variance: 1.5\n", "pca_variance must be in"),
        ("features: [\n", "not valid YAML"),
    ],
)
def test_mistakes_are_errors_that_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "segmentation.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path)
    assert str(path) in str(error.value)


def test_overrides_are_checked_like_the_file():
    config = SegmentationConfig().with_overrides(refresh={"mode": "full"})
    assert config.refresh.mode == "full"
    with pytest.raises(ConfigError, match=r"refresh\.mode must be one of"):
        SegmentationConfig().with_overrides(refresh={"mode": "sometimes"})
