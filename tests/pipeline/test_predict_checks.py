"""The batch job refuses data its model cannot be scored on, and bad --as-of values."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from features.spec import FeatureSpec
from pipeline.errors import DataContractError
from pipeline.predict import check_model_matches, parse_as_of
from tests.conftest import make_deals, utc


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
