"""Percentile ranks among the deals open at the same as_of: a naive reference, the point-in-time
rule, and independence from other dates' rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closeprob.features.build import build_features
from closeprob.features.registry import feature_descriptions
from closeprob.features.snapshot_ranks import RANKED, snapshot_rank_features
from closeprob.features.spec import FeatureSpec
from tests.conftest import utc
from tests.features.test_point_in_time import AS_OF, DEALS, TYPES, _events, event_strategy

RANKS = FeatureSpec(
    event_types=TYPES, windows_days=(7, 30), attributes=("source",), snapshot_ranks=True
)
EARLIER = utc("2024-01-20")  # D1, D3, D4 and D5 are open then; D1, D2, D4 at AS_OF
SNAPSHOTS = pd.DataFrame(
    {
        "deal_id": ["D1", "D3", "D4", "D5", "D1", "D2", "D4"],
        "as_of": [EARLIER] * 4 + [AS_OF] * 3,
    }
)


def test_a_rank_is_the_share_of_the_dates_rows_at_or_below_ties_averaged_missing_kept() -> None:
    features = pd.DataFrame(
        {"deal_age_days": [10.0, 20.0, 20.0, 40.0, 5.0], "days_in_stage": [1.0, np.nan, 3, 2, 9]}
    )
    as_of = np.array([EARLIER] * 4 + [AS_OF])
    ranks = snapshot_rank_features(features, as_of)
    assert list(ranks.columns) == ["deal_age_days_pct", "days_in_stage_pct"]
    assert ranks["deal_age_days_pct"].tolist() == [0.25, 0.625, 0.625, 1.0, 1.0]
    np.testing.assert_array_equal(ranks["days_in_stage_pct"], [1 / 3, np.nan, 1.0, 2 / 3, 1.0])


def test_every_built_column_has_a_description_and_each_rank_is_in_range() -> None:
    built = build_features(DEALS, _events([]), SNAPSHOTS, RANKS)
    described = feature_descriptions(RANKS)
    assert list(built.columns[2:]) == list(described)
    ranked = [f"{name}_pct" for name in RANKED if name in described]
    assert ranked == [name for name in described if name.endswith("_pct")] and ranked
    values = built[ranked].to_numpy(dtype=float)
    assert np.all((values[~np.isnan(values)] > 0) & (values[~np.isnan(values)] <= 1))
    plain = build_features(DEALS, _events([]), SNAPSHOTS, replace(RANKS, snapshot_ranks=False))
    pd.testing.assert_frame_equal(built[list(plain.columns)], plain)


SHIFT = int((EARLIER - AS_OF).total_seconds())  # the earlier date, in seconds from AS_OF


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    past=st.lists(event_strategy(-200 * 86_400, -1), max_size=25),
    future=st.lists(event_strategy(0, 60 * 86_400), max_size=25),
    changed=st.lists(event_strategy(0, 60 * 86_400), max_size=25),
    earlier=st.booleans(),
)
def test_events_at_or_after_as_of_change_no_rank(
    past: list, future: list, changed: list, earlier: bool
) -> None:
    """Events at or after a date's as_of, added or replaced, leave every rank (and every
    other feature) of that date's rows unchanged; for the earlier date that includes events
    before the later one, which the later date's rows do see."""
    shift = SHIFT if earlier else 0
    moved = [[dict(r, offset_seconds=r["offset_seconds"] + shift) for r in rows] for rows in
             (past, future, changed)]  # fmt: skip
    past, future, changed = moved
    baseline = _events(past + future)
    altered = _events(past + changed + [dict(r, offset_seconds=shift) for r in changed[:3]])
    rows = SNAPSHOTS["as_of"] == (EARLIER if earlier else AS_OF)
    expected = build_features(DEALS, baseline, SNAPSHOTS, RANKS)[rows]
    actual = build_features(DEALS, altered, SNAPSHOTS, RANKS)[rows]
    pd.testing.assert_frame_equal(actual, expected)


@pytest.mark.parametrize("date", [EARLIER, AS_OF])
def test_a_dates_ranks_do_not_depend_on_other_dates_rows(date: pd.Timestamp) -> None:
    events = _events([])
    together = build_features(DEALS, events, SNAPSHOTS, RANKS)
    alone = SNAPSHOTS[SNAPSHOTS["as_of"] == date]
    pd.testing.assert_frame_equal(
        build_features(DEALS, events, alone, RANKS), together.loc[alone.index]
    )
