"""Relative paths in a config start from the config file's folder (and its `root`), never from
the working directory: a config works wherever the job runs from."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from closeprob.pipeline.config import load_config
from closeprob.pipeline.errors import ConfigError
from tests.conftest import DEFAULT_CONFIG

CONFIGS = DEFAULT_CONFIG.parent


def _write(path: Path, raw: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def test_relative_paths_start_from_the_config_files_folder_and_absolute_ones_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    raw = {
        "data": {"deals": "crm/deals.csv", "interactions": "/srv/crm/interactions.csv"},
        "predict": {"out": "../outputs/queue.csv", "to": "sqlite:///scores/scores.db"},
    }
    config = load_config(_write(Path("team") / "nightly.yaml", raw))
    assert config.data.deals == Path("team/crm/deals.csv")
    assert config.data.interactions == Path("/srv/crm/interactions.csv")
    assert config.predict.out == Path("outputs/queue.csv")
    assert config.predict.to == "sqlite:///team/scores/scores.db"
    # Paths the file leaves out start there too.
    assert config.spark.training_features == Path("team/outputs/training_features.parquet")
    assert config.root == Path("team")


def test_root_moves_where_relative_paths_start_and_an_absolute_sqlite_url_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path / "..")
    raw = {"root": "..", "data": {"deals": "data/d.csv"}, "predict": {"to": "sqlite:////db/s.db"}}
    config = load_config(_write(Path(tmp_path.name) / "configs" / "c.yaml", raw))
    assert config.data.deals == Path(tmp_path.name) / "data" / "d.csv"
    assert config.predict.out == Path(tmp_path.name) / "outputs" / "priority_queue.csv"
    assert config.predict.to == "sqlite:////db/s.db"


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_shipped_config_names_the_same_files_from_any_working_directory(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CONFIGS.parent)
    from_project = load_config(Path("configs") / name)
    monkeypatch.chdir(tmp_path)
    from_elsewhere = load_config(CONFIGS / name)
    assert from_project.data.deals.is_relative_to("data")  # the project's data/, as before
    assert from_project.predict.out.is_relative_to("outputs")
    for config in (from_project, from_elsewhere):
        assert (CONFIGS.parent / config.data.deals).resolve() == (
            CONFIGS.parent / from_project.data.deals
        ).resolve()
    assert from_elsewhere.predict.out == (CONFIGS.parent / from_project.predict.out).absolute()


def test_a_config_written_for_the_working_directory_says_to_add_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, relative paths started from the working directory: a config in configs/ that
    names data/deals.csv found the project's file. Now it would read configs/data/deals.csv,
    which is not there: an error with the fix, instead of reading or generating other data."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "deals.csv").write_text("deal_id\n")
    raw = {"data": {"deals": "data/deals.csv", "interactions": "data/interactions.csv"}}
    path = _write(Path("configs") / "mine.yaml", raw)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(
        "configs/mine.yaml: data.deals 'data/deals.csv' is read from the config's folder since "
        "relative paths in a config start there (configs/data/deals.csv: not found), but "
        "data/deals.csv exists in the working directory, where it was read before. Add "
        "`root: ..` to configs/mine.yaml"
    )
    raw["root"] = ".."
    assert load_config(_write(path, raw)).data.deals == Path("data/deals.csv")


def test_a_config_leaving_data_to_the_defaults_is_not_taken_for_the_old_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is about paths a config writes: one that inherits default.yaml's data paths,
    beside a working directory that holds data/deals.csv (`make train` generated it), loads."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "deals.csv").write_text("deal_id\n")
    path = _write(Path("configs") / "seed.yaml", {"seed": 7})
    assert load_config(path).data.deals == Path("configs/data/deals.csv")
