"""The queue with value.source: clv and ranking.tier_by: account_clv; value captured per source."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest

from closeprob.models.account_value import CLV
from closeprob.models.metrics import value_captured
from closeprob.pipeline.account_values import (
    clv_baseline,
    queue_account_clv,
    value_source_metrics,
    value_source_summary,
)
from closeprob.pipeline.config import RankingConfig, ValueConfig
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.scoring import rank_queue
from tests.models.test_account_value import AS_OF, _repeat_buyers

LATER = AS_OF + pd.Timedelta(days=1)


class _Loaded:
    """What rank_queue reads of a registry model: no value model, a version, stage names and
    no stage event type (its quotes are the values of its deals' other events)."""

    value = None
    version = "7"
    close = SimpleNamespace(spec=SimpleNamespace(stage_names=(), stage_event_type=None))


def _queue(ranking: RankingConfig, value: ValueConfig) -> pd.DataFrame:
    deals = _repeat_buyers(40)
    open_ids = deals.loc[deals["outcome"].isna(), "deal_id"]
    scored = pd.DataFrame({"deal_id": open_ids.to_numpy(), "p_close": 0.5, "stage_value": np.nan})
    loaded = cast(Any, _Loaded())
    return rank_queue(
        scored, Dataset(deals, pd.DataFrame(), None), loaded, LATER, ranking, None, value
    )


def test_value_source_clv_adds_the_accounts_clv_to_the_deal_value() -> None:
    plain = _queue(RankingConfig(), ValueConfig(source="deal")).set_index("deal_id")
    with_clv = _queue(RankingConfig(), ValueConfig(source="clv")).set_index("deal_id")
    assert (plain["value_source"] == "declared").all()
    assert (with_clv["value_source"] == CLV).all()
    extra = with_clv["deal_value"] - plain.loc[with_clv.index, "deal_value"]
    assert (extra > 0).all()


def test_tiers_by_account_clv_put_the_most_valuable_account_in_a() -> None:
    queue = _queue(RankingConfig(tier_by="account_clv"), ValueConfig(source="clv"))
    # Every deal is worth 1000 + its account's CLV at p = 0.5: the top deal has the top CLV.
    assert queue.loc[0, "tier"] == "A"
    by_tier = queue.groupby("tier")["deal_value"].min()
    assert by_tier["A"] >= queue.loc[queue["tier"] == "C", "deal_value"].max()


def test_clv_on_data_without_repeat_accounts_is_refused_with_the_fix() -> None:
    deals = pd.DataFrame({"deal_id": ["D1", "D2"], "account_id": ["A1", "A2"]})
    with pytest.raises(DataContractError, match=r"deals: value.source: clv.*value.source: deal"):
        queue_account_clv(deals, deals["deal_id"], LATER, ValueConfig(source="clv"), "deals")


def test_value_captured_by_deal_value_alone_is_the_evaluations_usual_figure() -> None:
    deals = _repeat_buyers(40)
    rows = deals[["deal_id"]].assign(as_of=AS_OF - pd.Timedelta(days=90))
    rng = np.random.default_rng(0)
    labels = (deals["outcome"] == "won").to_numpy(dtype=float)
    p = rng.uniform(0, 1, len(rows))
    value = deals["amount"].to_numpy()
    metrics = value_source_metrics(deals, rows, labels, p, value, ValueConfig(), 10)
    usual = value_captured(labels * value, p * value, rows["as_of"], 10)
    assert metrics["test_value_captured_at_capacity_deal_on_deal_won"] == usual
    assert set(metrics) >= {
        "test_value_captured_at_capacity_clv_on_deal_won",
        "test_value_captured_at_capacity_clv_on_account_won",
    }
    summary = value_source_summary(metrics, 10)
    assert summary is not None and "deal value + account CLV" in summary
    assert value_source_summary({}, 10) is None


def test_data_without_accounts_report_no_clv_figures() -> None:
    deals = pd.DataFrame({"deal_id": ["D1", "D2"]})
    rows = deals.assign(as_of=AS_OF)
    assert (
        value_source_metrics(deals, rows, np.ones(2), np.ones(2), np.ones(2), ValueConfig(), 1)
        == {}
    )


def test_the_clv_baseline_ranks_test_rows_by_their_accounts_expected_purchases() -> None:
    deals = _repeat_buyers(40)
    open_ids = deals.loc[deals["outcome"].isna(), "deal_id"].to_numpy()
    features = pd.DataFrame(
        {"deal_id": np.concatenate([open_ids, open_ids]), "as_of": [AS_OF] * 40 + [LATER] * 40}
    )
    calibration = np.arange(80) < 40
    labels = np.tile([0, 1], 20)
    result = clv_baseline(deals, features, calibration, ~calibration, labels, ValueConfig())
    assert result is not None
    p_close, score = result
    assert len(p_close) == len(score) == 40 and (score > 0).all()
    assert ((p_close > 0) & (p_close < 1)).all()
    no_accounts = deals.drop(columns="account_id")
    assert (
        clv_baseline(no_accounts, features, calibration, ~calibration, labels, ValueConfig())
        is None
    )
