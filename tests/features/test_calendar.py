"""Days from a snapshot date to its quarter's last day: hand-picked dates, the quarter-end
invariant, and the family in the built feature table."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from closeprob.features.build import build_features
from closeprob.features.calendar import calendar_features
from closeprob.features.registry import feature_descriptions
from closeprob.features.spec import FeatureSpec
from tests.features.test_point_in_time import DEALS, TYPES, _events
from tests.features.test_snapshot_ranks import SNAPSHOTS


def test_days_to_quarter_end_counts_whole_utc_days_and_is_zero_on_the_last_day() -> None:
    as_of = pd.Series(
        pd.to_datetime(
            ["2017-09-30", "2017-10-01", "2017-03-08 13:00", "2024-12-31 23:59", "2024-02-29"],
            utc=True,
            format="mixed",
        )
    )
    assert calendar_features(as_of)["days_to_quarter_end"].tolist() == [0, 91, 23, 0, 31]


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31)))
def test_the_quarter_end_is_that_many_days_later_and_the_next_day_starts_a_quarter(
    when: datetime,
) -> None:
    as_of = pd.Timestamp(when, tz="UTC")
    (days,) = calendar_features(pd.Series([as_of]))["days_to_quarter_end"]
    last = as_of.normalize() + timedelta(days=int(days))
    assert 0 <= days <= 91 and last.quarter == as_of.quarter and last.year == as_of.year
    assert (last + timedelta(days=1)).quarter != as_of.quarter


def test_the_built_table_gains_the_column_described_and_nothing_else_changes() -> None:
    spec = FeatureSpec(event_types=TYPES, windows_days=(7, 30), attributes=("source",))
    with_calendar = replace(spec, calendar=True)
    built = build_features(DEALS, _events([]), SNAPSHOTS, with_calendar)
    assert list(built.columns[2:]) == list(feature_descriptions(with_calendar))
    expected = calendar_features(SNAPSHOTS["as_of"])["days_to_quarter_end"].to_numpy()
    assert built["days_to_quarter_end"].tolist() == expected.tolist()
    plain = build_features(DEALS, _events([]), SNAPSHOTS, spec)
    pd.testing.assert_frame_equal(built[list(plain.columns)], plain)
