"""Refuse what can't be true: contract columns as attributes, attributes that leak the outcome,
a model too good to believe, a model no better than chance. Through the real CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from closeprob.features.attributes import open_closed_contrast
from closeprob.pipeline.cli import main
from closeprob.pipeline.config import CONTRACT_DEAL_COLUMNS
from closeprob.pipeline.errors import TrainingDataError
from closeprob.pipeline.training import refuse_leaky_columns
from tests.conftest import DEFAULT_CONFIG, make_deals, write_small_crm


def _config_with(tmp_path: Path, **data: object) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["data"] |= data
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("column", CONTRACT_DEAL_COLUMNS)
def test_a_contract_column_in_data_attributes_is_refused_at_config_load(
    tmp_path: Path, column: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_with(tmp_path, attributes=["industry", column])
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"data: Value error, attributes ['{column}'] are columns of the data contract" in err
    assert "Remove them from data.attributes" in err


def _deals_with_account_filled_at_close() -> pd.DataFrame:
    rows = []
    for i in range(60):
        closed = i < 40
        rows.append(
            {
                "deal_id": f"D{i}",
                "created_at": "2024-01-01",
                "closed_at": "2024-03-01" if closed else None,
                "outcome": ("won" if i % 2 else "lost") if closed else None,
                "account": f"ACC{i % 5}" if closed else None,
                "region": ["north", "south"][i % 2],
            }
        )
    return make_deals(rows)


def test_the_contrast_shows_both_fill_rates_of_each_attribute() -> None:
    contrast = open_closed_contrast(_deals_with_account_filled_at_close(), ("account", "region"))
    by_name = contrast.set_index("attribute")
    assert by_name.loc["account", "open_fill"] == 0.0
    assert by_name.loc["account", "closed_fill"] == 1.0
    assert by_name.loc["region", "value_distance"] == pytest.approx(0.0)


def test_an_attribute_filled_only_at_close_is_refused_naming_it_and_both_rates() -> None:
    with pytest.raises(TrainingDataError) as caught:
        refuse_leaky_columns(
            _deals_with_account_filled_at_close(), ("account", "region"), (), "d.csv"
        )
    text = str(caught.value)
    assert "d.csv: column 'account' leaks the outcome" in text
    assert "filled in 0% of open deals and 100% of closed deals" in text
    assert "'region'" not in text and "data.allow_suspect_columns" in text


def test_a_numeric_attribute_set_at_close_is_refused() -> None:
    deals = _deals_with_account_filled_at_close()
    deals["days_to_close"] = np.where(deals["closed_at"].notna(), np.arange(60) + 100.0, 1.0)
    with pytest.raises(TrainingDataError, match="'days_to_close' leaks the outcome"):
        refuse_leaky_columns(deals, ("days_to_close",), (), "d.csv")


def test_a_column_the_user_vouches_for_is_not_refused() -> None:
    refuse_leaky_columns(_deals_with_account_filled_at_close(), ("account",), ("account",), "d")


@pytest.mark.slow
def test_the_current_stage_as_an_attribute_is_exit_2_at_check_and_train_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_small_crm(tmp_path, 600)
    raw = yaml.safe_load(config.read_text())
    deals = pd.read_csv(raw["data"]["deals"])
    # The stage on the export day: 'Closed Won'/'Closed Lost' on every closed deal.
    deals["stage"] = np.where(
        deals["outcome"].isna(), "Negotiation", "Closed " + deals["outcome"].str.title()
    )
    deals.to_csv(raw["data"]["deals"], index=False)
    raw["data"]["attributes"] = [*raw["data"]["attributes"], "stage"]
    config.write_text(yaml.safe_dump(raw))
    assert main(["check", "--config", str(config)]) == 2
    out = capsys.readouterr().out
    assert "error: " in out and "column 'stage' leaks the outcome" in out
    assert "% of open deals and 100% of closed deals, its values 1.00 apart" in out
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "column 'stage' leaks the outcome" in err
    assert MlflowClient().search_registered_models() == []


@pytest.mark.slow
def test_a_model_trained_on_a_leaked_label_is_registered_but_never_promoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The label itself separates won from lost perfectly, so every fit grows trees until its cap
    # (and the logistic part to its iteration limit): a lower cap keeps the test quick and
    # changes nothing it checks.
    config = write_small_crm(tmp_path, 1000, model={"n_estimators": 100})
    raw = yaml.safe_load(config.read_text())
    deals = pd.read_csv(raw["data"]["deals"])
    deals["status"] = deals["outcome"]  # filled at close: the label itself
    deals.to_csv(raw["data"]["deals"], index=False)
    raw["data"]["attributes"] = [*raw["data"]["attributes"], "status"]
    # Vouched for (wrongly): the leak check passes it, the plausibility cap still catches it.
    raw["data"]["allow_suspect_columns"] = ["status"]
    config.write_text(yaml.safe_dump(raw))
    assert main(["train", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "version 1 not promoted: test ROC-AUC" in out and "oracle's" in out
    client = MlflowClient()
    aliases = client.get_registered_model("close-probability").aliases
    assert {k: str(v) for k, v in aliases.items()} == {"challenger": "1"}
    version = client.get_model_version("close-probability", "1")
    assert "at or above the oracle's" in version.tags["implausible"]


def _write_signal_free_crm(folder: Path) -> Path:
    """Deals whose outcome is a coin and whose life is memoryless, with events at times that
    ignore both: nothing in the data predicts a win."""
    rng = np.random.default_rng(7)
    n = 400
    created = pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(
        rng.uniform(0, 600, n), unit="D"
    )
    closed = created + pd.to_timedelta(rng.exponential(60, n), unit="D")
    deals = pd.DataFrame(
        {
            "deal_id": [f"D{i}" for i in range(n)],
            "created_at": created,
            "closed_at": closed,
            "outcome": np.where(rng.random(n) < 0.5, "won", "lost"),
            "owner_id": [f"U{i}" for i in rng.integers(0, 5, n)],
        }
    )
    events = pd.DataFrame(
        {
            "deal_id": np.repeat(deals["deal_id"], 10).to_numpy(),
            "occurred_at": np.repeat(created, 10)
            + pd.to_timedelta(rng.uniform(0, 300, 10 * n), unit="D"),
            "type": rng.choice(["email", "call"], 10 * n),
        }
    )
    deals.to_csv(folder / "deals.csv", index=False)
    events.to_csv(folder / "interactions.csv", index=False)
    raw = {  # a partial config: everything else takes the defaults
        "data": {
            "deals": str(folder / "deals.csv"),
            "interactions": str(folder / "interactions.csv"),
            "truth": None,
            "attributes": [],
        },
        "evaluation": {"segment": None},
        "value": {"segment": None},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_a_model_no_better_than_chance_is_refused_with_counts_and_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import matplotlib.pyplot as plt

    config = _write_signal_free_crm(tmp_path)
    open_before = plt.get_fignums()
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after any data warning
    assert err.startswith("error: not registered: ")
    assert "won and" in err and "training rows" in err and "Use a longer history" in err
    assert MlflowClient().search_registered_models() == []
    assert plt.get_fignums() == open_before  # the charts it drew and never logged are closed
