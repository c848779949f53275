"""Loading the YAML configuration, and the CLI's handling of user-facing errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from closeprob.pipeline.cli import main
from closeprob.pipeline.config import (
    Config,
    flatten_config,
    load_config,
    resolve_paths,
    with_data_paths,
)
from closeprob.pipeline.errors import ConfigError
from tests.conftest import DEFAULT_CONFIG, write_csv


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# load_config


def test_an_unknown_key_is_refused_with_the_file_and_the_dotted_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "snapshots:\n  every_dayz: 7\n")
    with pytest.raises(
        ConfigError,
        match=r"config\.yaml: invalid configuration: snapshots\.every_dayz: "
        r"Extra inputs are not permitted \(got 7\)",
    ):
        load_config(path)


def test_a_wrong_type_is_refused_with_the_key_and_the_value(tmp_path: Path) -> None:
    path = write_config(tmp_path, "snapshots:\n  horizon_days: ninety\n")
    with pytest.raises(
        ConfigError,
        match=r"config\.yaml: invalid configuration: snapshots\.horizon_days: "
        r"Input should be a valid integer.*\(got 'ninety'\)",
    ):
        load_config(path)


def test_a_missing_config_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"nowhere\.yaml: config file not found; pass --config PATH"
    ):
        load_config(tmp_path / "nowhere.yaml")


def test_malformed_yaml_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, "snapshots: [every_days: 7\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: not valid YAML"):
        load_config(path)


def test_a_top_level_list_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, "- seed\n- 42\n")
    with pytest.raises(
        ConfigError, match=r"config\.yaml: expected a mapping at the top level, got list"
    ):
        load_config(path)


def test_an_empty_config_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path, "")) == resolve_paths(Config(), tmp_path)


def test_split_shares_summing_above_0_9_are_refused(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, "split:\n  validation_share: 0.3\n  calibration_share: 0.3\n  test_share: 0.35\n"
    )
    with pytest.raises(
        ConfigError,
        match=r"config\.yaml: invalid configuration: split: .*"
        r"validation_share \+ calibration_share \+ test_share = 0\.95; keep it below 0\.9",
    ):
        load_config(path)


def test_split_shares_summing_to_exactly_0_9_are_refused(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, "split:\n  validation_share: 0.3\n  calibration_share: 0.3\n  test_share: 0.3\n"
    )
    with pytest.raises(ConfigError, match=r"config\.yaml: invalid configuration: split: "):
        load_config(path)


def test_the_default_config_loads() -> None:
    config = load_config(DEFAULT_CONFIG)
    assert config.snapshots.horizon_days == 90
    assert config.data.truth == DEFAULT_CONFIG.parents[1] / "data" / "truth.csv"
    assert config.data.attributes == ("industry", "company_size", "source", "region", "product")


def test_a_loaded_config_is_frozen() -> None:
    config = load_config(DEFAULT_CONFIG)
    with pytest.raises(ValueError, match="frozen"):
        config.seed = 7  # type: ignore[misc]


# with_data_paths and flatten_config


def test_with_data_paths_replaces_both_paths_and_clears_truth() -> None:
    config = with_data_paths(load_config(DEFAULT_CONFIG), Path("my/deals.csv"), Path("my/i.pq"))
    assert config.data.deals == Path("my/deals.csv")
    assert config.data.interactions == Path("my/i.pq")
    assert config.data.truth is None


def test_with_data_paths_replacing_one_path_keeps_the_other() -> None:
    config = with_data_paths(load_config(DEFAULT_CONFIG), deals=Path("my/deals.csv"))
    assert config.data.interactions == DEFAULT_CONFIG.parents[1] / "data" / "interactions.csv"
    assert config.data.truth is None


def test_with_data_paths_without_paths_changes_nothing() -> None:
    config = load_config(DEFAULT_CONFIG)
    assert with_data_paths(config) == config


def test_with_data_paths_does_not_change_the_original_config() -> None:
    config = load_config(DEFAULT_CONFIG)
    with_data_paths(config, Path("my/deals.csv"), Path("my/i.csv"))
    assert config.data.truth == DEFAULT_CONFIG.parents[1] / "data" / "truth.csv"


def test_flatten_config_gives_dotted_keys_and_text_values() -> None:
    flat = flatten_config(load_config(DEFAULT_CONFIG))
    assert flat["snapshots.horizon_days"] == "90"
    assert flat["model.learning_rate"] == "0.03"
    assert flat["data.deals"] == str(DEFAULT_CONFIG.parents[1] / "data" / "deals.csv")
    assert flat["seed"] == "42"
    assert all(isinstance(value, str) for value in flat.values())
    assert not any(key.startswith(".") for key in flat)


# CLI


@pytest.fixture
def bad_deals_csv(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "bad_deals.csv",
        # The default config declares these attribute columns, so the duplicate id is the fault.
        "deal_id,created_at,closed_at,outcome,industry,company_size,source,region,product\n"
        "D1,2024-01-01,,,retail,small,web,EU,core\n"
        "D1,2024-01-02,2024-02-01,won,retail,small,web,EU,core\n",
    )


@pytest.fixture
def interactions_csv(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "interactions.csv", "deal_id,occurred_at,type\nD1,2024-01-05,email\n"
    )


def test_train_on_a_bad_deals_file_exits_2_with_an_error_naming_the_file(
    bad_deals_csv: Path, interactions_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--config", str(DEFAULT_CONFIG)]
    argv += ["--deals", str(bad_deals_csv), "--interactions", str(interactions_csv)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad_deals_csv}: column 'deal_id' is duplicated in 2 rows")


def test_a_missing_config_file_exits_2_with_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--config", str(tmp_path / "nowhere.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nowhere.yaml: config file not found" in err


def test_a_failed_train_run_leaves_no_mlflow_store_in_the_working_folder(
    tmp_path: Path,
    bad_deals_csv: Path,
    interactions_csv: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Without the sandbox's URI, MLflow would default to sqlite:///mlflow.db in the cwd.
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = ["train", "--config", str(DEFAULT_CONFIG)]
    argv += ["--deals", str(bad_deals_csv), "--interactions", str(interactions_csv)]
    assert main(argv) == 2
    assert "error: " in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_unknown_reasons_for_or_engine_is_refused_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for section, text in (("ranking", "reasons_for: everyone"), ("predict", "engine: dask")):
        path = write_csv(tmp_path / "config.yaml", f"{section}:\n  {text}\n")
        assert main(["predict", "--config", str(path)]) == 2
        err = capsys.readouterr().err
        key, value = text.split(": ")
        assert f"{section}.{key}: Input should be" in err and repr(value) in err
