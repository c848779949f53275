"""`build_features` finds the deals' first stage entries in its own event index (integer deal
codes, no string groupby): the same entries and the same stage win rate as the entries table
of deal ids (`first_stage_entries`) that predict and the Spark buckets pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.build import build_features
from closeprob.features.spec import FeatureSpec
from closeprob.features.stage_win_rate import (
    entries_in_log,
    first_stage_entries,
    stage_win_rate_features,
)
from closeprob.features.timeline import index_events, to_seconds
from tests.conftest import make_interactions
from tests.features.test_stage_win_rate import START, crm, deal_rows, stage_rows


def test_entries_in_the_event_index_are_the_first_stage_entries() -> None:
    events = make_interactions(
        [
            {"deal_id": "A", "occurred_at": "2024-01-05", "type": "stage_change", "value": 2},
            {"deal_id": "A", "occurred_at": "2024-01-02", "type": " Stage_Change", "value": 2},
            {"deal_id": "A", "occurred_at": "2024-01-03", "type": "STAGE_CHANGE", "value": 1},
            {"deal_id": "A", "occurred_at": "2024-01-01", "type": "stage_change", "value": None},
            {"deal_id": "B", "occurred_at": "2024-01-04", "type": "email", "value": 1},
            {"deal_id": "B", "occurred_at": "2024-01-06", "type": "stage_change", "value": 3},
            {"deal_id": "Z", "occurred_at": "2024-01-01", "type": "stage_change", "value": 1},
        ]
    )
    deal_ids = pd.Index(["B", "A"], dtype="str")  # Z is no deal of the table
    coded = entries_in_log(index_events(events, deal_ids, threads=1), "stage_change")
    found = pd.DataFrame(
        {"deal": deal_ids[coded.deal], "stage": coded.stage, "at": coded.entered_seconds}
    ).sort_values(["deal", "stage"], ignore_index=True)
    expected = first_stage_entries(events, "stage_change")
    expected = expected[expected["deal_id"].isin(deal_ids)].reset_index(drop=True)
    np.testing.assert_array_equal(found["deal"], expected["deal_id"])
    np.testing.assert_array_equal(found["stage"], expected["stage"])
    np.testing.assert_array_equal(found["at"], to_seconds(expected["entered_at"]))


@settings(max_examples=60, deadline=None)
@given(deal_rows, stage_rows, st.integers(1, 130), st.sampled_from([1, 2]))
def test_the_built_stage_win_rate_equals_the_one_from_the_entries_table(
    deal_spec: list[tuple[int, str | None]],
    stage_spec: list[tuple[int, int, float | None]],
    day: int,
    threads: int,
) -> None:
    deals, events = crm(deal_spec, stage_spec)
    spec = FeatureSpec(event_types=("stage_change",), history_keys=(), stage_history=True)
    snapshots = pd.DataFrame({"deal_id": deals["deal_id"], "as_of": START + pd.Timedelta(days=day)})
    built = build_features(deals, events, snapshots, spec, threads)
    entries = first_stage_entries(events, spec.stage_event_type)
    table = stage_win_rate_features(
        deals, events, snapshots, entries, spec.stage_event_type, spec.prior_strength
    )
    np.testing.assert_array_equal(built["stage_win_rate"], table["stage_win_rate"])
