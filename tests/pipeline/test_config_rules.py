"""The configuration rules through the real CLI: defaults in one place, partial files, and every
value that names a metric or a column checked before any work (exit 2, nothing written)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from closeprob.models.promotion import PROMOTABLE_METRICS
from closeprob.pipeline.cli import main
from closeprob.pipeline.config import Config, load_config, parse_config, resolve_paths
from tests.conftest import DEFAULT_CONFIG, write_small_crm

CONFIGS = DEFAULT_CONFIG.parent
DATA_SETS = ["bank_marketing.yaml", "bpi2012.yaml", "crm_sales.yaml", "olist.yaml"]


def _leaves(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key → value of every leaf of a nested mapping."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            flat |= _leaves(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# --- defaults in one place ---------------------------------------------------------------------


def test_default_yaml_spells_out_exactly_the_code_defaults() -> None:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    # `root` alone differs: default.yaml lives in configs/, its paths start one folder up.
    assert parse_config(raw) == Config(root=Path(".."))
    assert set(_leaves(raw)) == set(_leaves(Config().model_dump(mode="json")))


@pytest.mark.parametrize("name", DATA_SETS)
def test_a_data_set_config_holds_only_what_differs_from_the_defaults(name: str) -> None:
    raw = _leaves(yaml.safe_load((CONFIGS / name).read_text()))
    defaults = _leaves(Config().model_dump(mode="json"))
    loaded = _leaves(load_config(CONFIGS / name).model_dump(mode="json"))
    same = [key for key in raw if loaded[key] == defaults[key]]
    assert same == [], f"{name} repeats defaults: {same}"


def test_a_partial_config_takes_default_yaml_for_every_key_it_leaves_out(tmp_path: Path) -> None:
    path = tmp_path / "partial.yaml"
    path.write_text("seed: 7\nevaluation:\n  capacity: 20\n")
    config = load_config(path)
    defaults = parse_config(yaml.safe_load(DEFAULT_CONFIG.read_text()))
    # Its paths start from its own folder (no `root` of its own).
    expected = resolve_paths(defaults.model_copy(update={"root": Path(".")}), tmp_path).model_dump()
    expected["seed"] = 7
    expected["evaluation"]["capacity"] = 20
    assert config.model_dump() == expected


def test_a_config_naming_its_own_data_does_not_inherit_the_generator_truth(
    tmp_path: Path,
) -> None:
    path = tmp_path / "own.yaml"
    path.write_text("data:\n  deals: mine/deals.csv\n  interactions: mine/interactions.csv\n")
    config = load_config(path)
    assert config.data.truth is None and config.data.adapter is None
    assert config.data.attributes == Config().data.attributes  # still the default: checked


# --- through the CLI: exit 2, the message, nothing written --------------------------------------


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated CRM and the default config pointed at it."""
    return write_small_crm(tmp_path_factory.mktemp("crm"), 300)


def _run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    command: str = "train",
) -> str:
    """`closeprob <command> --config` on `text` in an empty folder, with the default store
    there; asserts exit 2 and that nothing was written. Returns stderr."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the default store would land in `work`
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    config = tmp_path / "config.yaml"
    config.write_text(text)
    assert main([command, "--config", str(config)]) == 2
    assert list(work.iterdir()) == []
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    return err


def _crm_config(crm: Path, **updates: dict[str, Any]) -> str:
    raw = yaml.safe_load(crm.read_text())
    for section, values in updates.items():
        raw[section] = raw.get(section, {}) | values
    return yaml.safe_dump(raw)


@pytest.mark.parametrize("command", ["train", "evaluate", "backtest"])
def test_an_unknown_primary_metric_is_refused_at_load_time_with_the_choices(
    command: str,
    crm: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _crm_config(crm, evaluation={"primary_metric": "test_auc"})
    err = _run(tmp_path, monkeypatch, capsys, text, command)
    assert "config.yaml: invalid configuration: evaluation.primary_metric: " in err
    assert "'test_auc' is not a test metric that training logs with higher = better" in err
    assert str(list(PROMOTABLE_METRICS)) in err


def test_a_lower_is_better_metric_cannot_be_the_primary_metric(
    crm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _crm_config(crm, evaluation={"primary_metric": "test_log_loss"})
    err = _run(tmp_path, monkeypatch, capsys, text)
    assert "'test_log_loss' is not a test metric that training logs with higher = better" in err


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (
            "evaluation",
            {"segment": "sourse"},
            r"deals\.csv: no column 'sourse' \(did you mean 'source'\?\), named by "
            r"evaluation\.segment = \['sourse'\] in the config .* Set evaluation\.segment to one "
            r"of them, or null for no per-segment metrics",
        ),
        (
            "value",
            {"segment": "size"},
            r"deals\.csv: no column 'size'.*, named by value\.segment = \['size'\] in the config"
            r".* Set value\.segment to one of them, or null",
        ),
        (
            "data",
            {"attributes": ["industry", "regoin"]},
            r"deals\.csv: no column 'regoin' \(did you mean 'region'\?\), named by "
            r"data\.attributes = \['industry', 'regoin'\]",
        ),
    ],
)
@pytest.mark.parametrize("command", ["train", "predict"])
def test_a_config_naming_a_column_the_deals_lack_is_refused_before_any_work(
    section: str,
    values: dict[str, Any],
    message: str,
    command: str,
    crm: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`evaluation.segment: sourse` used to skip the segment metrics silently."""
    text = _crm_config(crm, **{section: values})
    err = _run(tmp_path, monkeypatch, capsys, text, command)
    assert re.search(message, err), err


def test_a_partial_config_on_own_data_names_the_default_it_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to use the code's defaults silently, and then claim the deals lacked columns."""
    deals = tmp_path / "deals.csv"
    deals.write_text("deal_id,created_at,closed_at,outcome,amount\nD1,2024-01-01,,,100\n")
    events = tmp_path / "interactions.csv"
    events.write_text("deal_id,occurred_at,type\nD1,2024-01-02,call\n")
    text = f"data:\n  deals: {deals}\n  interactions: {events}\n"
    err = _run(tmp_path, monkeypatch, capsys, text)
    assert re.search(
        r"deals\.csv: no columns \['industry', 'company_size', 'source', 'region', 'product'\], "
        r"named by data\.attributes = \['industry', "
        r"'company_size', 'source', 'region', 'product'\] in the config \(a key the config file "
        r"leaves out takes configs/default\.yaml's value\); the deals table has columns "
        r"\['deal_id', 'created_at', 'closed_at', 'outcome', 'amount'\]\. Set data\.attributes "
        r"to a list of those columns \(\[\] for none\)",
        err,
    ), err


# --- YAML alias bombs ---------------------------------------------------------------------------

BOMB = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


@pytest.mark.parametrize(
    "text",
    [BOMB, BOMB.replace("\ni: &i", "\ndata:\n  attributes: &i")],
    ids=["top level", "under a real key"],
)
def test_a_yaml_alias_bomb_is_refused_quickly_with_a_short_message(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(text) < 1000
    started = time.perf_counter()
    err = _run(tmp_path, monkeypatch, capsys, text)
    assert time.perf_counter() - started < 5
    assert "the YAML expands to more than 10,000 values (through aliases?)" in err
    assert len(err) < 400


def test_a_large_aliased_value_under_the_cap_is_echoed_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """729 values: not a bomb, but a wrong type; the message shows the start of the value."""
    text = "\n".join([*BOMB.splitlines()[:3], "seed: *c"])
    err = _run(tmp_path, monkeypatch, capsys, text)
    assert "seed: Input should be a valid integer" in err
    assert "characters)" in err
    assert len(err) < 1000


def test_a_self_referencing_yaml_alias_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _run(tmp_path, monkeypatch, capsys, "data:\n  attributes: &a [x, *a]\n")
    assert "a YAML alias refers to itself" in err
