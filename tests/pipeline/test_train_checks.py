"""Training refuses data that cannot support it, and says what to do."""

from __future__ import annotations

import pandas as pd
import pytest

from closeprob.features.spec import FeatureSpec
from closeprob.models.split import TimeSplit, deployment_split
from closeprob.pipeline.core import TrainingData
from closeprob.pipeline.errors import TrainingDataError
from closeprob.pipeline.training import MIN_OUTCOMES, _check_slices, check_outcomes
from tests.conftest import make_deals


def _deals(won: int, lost: int):
    rows = [
        {
            "deal_id": f"W{i}",
            "created_at": "2024-01-01",
            "closed_at": "2024-02-01",
            "outcome": "won",
        }
        for i in range(won)
    ]
    rows += [
        {
            "deal_id": f"L{i}",
            "created_at": "2024-01-01",
            "closed_at": "2024-02-01",
            "outcome": "lost",
        }
        for i in range(lost)
    ]
    rows.append({"deal_id": "OPEN", "created_at": "2024-01-01"})
    return make_deals(rows)


def test_a_data_set_without_won_deals_is_refused() -> None:
    with pytest.raises(
        TrainingDataError, match=r"deals\.csv: column 'outcome' has 0 won and 50 lost"
    ):
        check_outcomes(_deals(0, 50), "deals.csv")


def test_a_data_set_without_lost_deals_is_refused() -> None:
    with pytest.raises(TrainingDataError, match=r"has 50 won and 0 lost deals"):
        check_outcomes(_deals(50, 0), "deals.csv")


def test_too_few_outcomes_state_the_minimum_and_what_to_do() -> None:
    with pytest.raises(
        TrainingDataError, match=rf"at least {MIN_OUTCOMES} of each\. Export a longer"
    ):
        check_outcomes(_deals(MIN_OUTCOMES - 1, 100), "deals.csv")


def test_enough_outcomes_pass() -> None:
    check_outcomes(_deals(MIN_OUTCOMES, MIN_OUTCOMES), "deals.csv")


def test_a_slice_with_one_label_only_is_refused_with_advice() -> None:
    dates = pd.date_range("2024-01-01", periods=4, freq="7D", tz="UTC")
    split = TimeSplit(dates[:1], dates[1:2], dates[2:3], dates[3:])
    features = pd.DataFrame({"deal_id": ["D1", "D2"] * 4, "as_of": dates.repeat(2)})
    labels = pd.Series([0, 1, 0, 1, 0, 1, 0, 0])
    data = TrainingData(
        features=features,
        labels=labels,
        slices=split.slice_of(features["as_of"]),
        split=split,
        spec=FeatureSpec(event_types=()),
        deployment=deployment_split(features, 0.5, 0.25),
    )
    with pytest.raises(
        TrainingDataError, match=r"the test slice \(2 snapshot rows\) has only label \[0\]"
    ):
        _check_slices(data)
