"""Interaction types are compared case-folded: an export that upper-cases them (`EMAIL_OUT`,
`STAGE_CHANGE`) gives the features of the lower-case one, for a model whose spec says either."""

from __future__ import annotations

import pandas as pd

from closeprob.features.build import build_features
from closeprob.features.snapshots import open_deal_snapshots, snapshot_dates
from closeprob.features.spec import FeatureSpec, select_event_types
from closeprob.pipeline.synthetic import generate_crm


def test_upper_cased_types_give_the_same_features_and_the_same_selected_types() -> None:
    crm = generate_crm(n_deals=120, n_interactions=2_400, start="2023-01-01", days=200, seed=5)
    snapshots = open_deal_snapshots(
        crm.deals, snapshot_dates(crm.deals["created_at"].min(), crm.end, 14)
    )
    shouted = crm.interactions.assign(type=crm.interactions["type"].str.upper())
    # Half the rows shouted: two spellings of each type in one file.
    mixed = crm.interactions.assign(
        type=crm.interactions["type"].where(crm.interactions.index % 2 == 0, shouted["type"])
    )
    types = select_event_types(crm.interactions, crm.end, 20)
    chosen = select_event_types(mixed, crm.end, 20)
    assert [t.casefold() for t in chosen] == [t.casefold() for t in types]
    spec = FeatureSpec(event_types=types, stage_history=True)
    expected = build_features(crm.deals, crm.interactions, snapshots, spec, threads=1)
    for events in (shouted, mixed):
        got = build_features(crm.deals, events, snapshots, spec, threads=1)
        pd.testing.assert_frame_equal(got, expected)
    # A model trained on capitalised types scores lower-case data the same way.
    capital = FeatureSpec(
        event_types=tuple(t.upper() for t in types), stage_event_type="STAGE_CHANGE"
    )
    lower = FeatureSpec(event_types=types)
    a = build_features(crm.deals, crm.interactions, snapshots, capital, threads=1)
    b = build_features(crm.deals, crm.interactions, snapshots, lower, threads=1)
    pd.testing.assert_frame_equal(a.set_axis(b.columns, axis=1), b)
