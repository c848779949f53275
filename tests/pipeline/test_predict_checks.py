"""The batch job refuses data its model cannot be scored on, and bad --as-of values."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from closeprob.features.spec import FeatureSpec
from closeprob.models.classifier import encode_features
from closeprob.pipeline.config import RankingConfig
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.dataset import rows_after
from closeprob.pipeline.errors import DataContractError, TrainingDataError
from closeprob.pipeline.registry import check_model_matches
from closeprob.pipeline.scoring import build_queue, parse_as_of
from tests.conftest import make_deals, make_interactions, utc


def test_a_model_whose_feature_columns_are_missing_is_refused_with_their_names() -> None:
    model = SimpleNamespace(spec=FeatureSpec(event_types=(), attributes=("industry",)))
    deals = make_deals([{"deal_id": "D1", "created_at": "2024-01-01"}])
    with pytest.raises(
        DataContractError, match=r"deals\.csv: the model was trained with columns \['industry'\]"
    ):
        check_model_matches(model, deals, "deals.csv")  # type: ignore[arg-type]


def test_as_of_with_an_offset_is_taken_to_utc_whole_seconds() -> None:
    assert parse_as_of("2024-06-01T08:00:00.7+02:00") == utc("2024-06-01T06:00:00")


def test_an_unreadable_as_of_is_refused() -> None:
    with pytest.raises(DataContractError, match="--as-of 'next tuesday'"):
        parse_as_of("next tuesday")


def test_events_after_an_explicit_as_of_are_counted_as_unused() -> None:
    deals = make_deals(
        [
            {"deal_id": "D1", "created_at": "2024-01-01"},
            {"deal_id": "D2", "created_at": "2024-03-01"},
        ]
    )
    events = make_interactions(
        [
            {"deal_id": "D1", "occurred_at": "2024-01-05", "type": "call"},
            {"deal_id": "D1", "occurred_at": "2024-02-05", "type": "call"},
        ]
    )
    assert rows_after(Dataset(deals, events, None), utc("2024-02-01")) == (
        "1 deals created (first deal_id: 'D2'); 1 interactions (first deal_id: 'D1')"
    )


def test_a_snapshot_with_no_open_deal_is_refused_with_advice() -> None:
    deals = make_deals(
        [{"deal_id": "D1", "created_at": "2024-01-01", "closed_at": "2024-01-10", "outcome": "won"}]
    )
    dataset = Dataset(deals, make_interactions([]), None)
    loaded = SimpleNamespace(close=None, value=None, version="1")
    with pytest.raises(TrainingDataError, match="no deal is open at as_of=2024-02-01"):
        build_queue(dataset, loaded, utc("2024-02-01"), RankingConfig(), 100, None)  # type: ignore[arg-type]


def test_a_category_never_seen_in_training_is_scored_as_missing() -> None:
    frame = pd.DataFrame({"attr_source": ["web", "fax machine", None], "x": [1.0, 2.0, 3.0]})
    encoded = encode_features(frame, ["attr_source", "x"], {"attr_source": ["referral", "web"]})
    assert encoded["attr_source"].tolist()[0] == "web"
    assert encoded["attr_source"].isna().tolist() == [False, True, True]
