"""Money features are exact per deal: a deal's `interaction_value_total` is its own events' sum,
bit for bit, whatever other deals' events (earlier, later, after `as_of`) the log holds."""

from __future__ import annotations

from fractions import Fraction

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closeprob.features.build import build_features
from closeprob.features.spec import FeatureSpec
from tests.conftest import make_deals, make_interactions, utc

AS_OF = utc("2024-03-01")
DEAL_IDS = [f"D{i}" for i in range(5)]
DEALS = make_deals(
    [{"deal_id": deal, "created_at": "2023-06-01", "owner_id": "U1"} for deal in DEAL_IDS]
)
SPEC = FeatureSpec(event_types=("quote", "email"), windows_days=(30,), attributes=())
# Cent amounts up to a million: 0.1 + 0.2 style sums, where float rounding shows.
# (deal_id, seconds from as_of, type, cents or None)
Event = tuple[str, int, str, int | None]
EVENT = st.tuples(
    st.sampled_from(DEAL_IDS),
    st.integers(min_value=-150 * 86_400, max_value=60 * 86_400),
    st.sampled_from(["quote", "email"]),
    st.one_of(st.none(), st.integers(min_value=0, max_value=100_000_000)),
)


def _events(rows: list[Event]) -> pd.DataFrame:
    return make_interactions(
        [
            {
                "deal_id": deal_id,
                "occurred_at": AS_OF + pd.Timedelta(seconds=seconds),
                "type": event_type,
                "value": float("nan") if cents is None else cents / 100,
            }
            for deal_id, seconds, event_type, cents in rows
        ]
    )


def _value_total(interactions: pd.DataFrame, deal_id: str) -> float:
    snapshot = pd.DataFrame({"deal_id": [deal_id], "as_of": [AS_OF]})
    built = build_features(DEALS, interactions, snapshot, SPEC)
    return float(built["interaction_value_total"].iloc[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(EVENT, min_size=1, max_size=40), deal_id=st.sampled_from(DEAL_IDS))
def test_a_deals_money_total_ignores_every_other_deals_events(
    events: list[Event], deal_id: str
) -> None:
    """Built from every deal's events (training) or from the deal's own events only (predict
    on one open deal), the total is the same float, and it is the exact cent sum of the deal's
    events before `as_of`, rounded once."""
    own = [event for event in events if event[0] == deal_id]
    everything = _value_total(_events(events), deal_id)
    alone = _value_total(_events(own), deal_id) if own else 0.0
    assert everything == alone
    exact = sum(
        (Fraction(cents, 100) for _, seconds, _, cents in own if cents is not None and seconds < 0),
        Fraction(0),
    )
    assert abs(everything - float(exact)) <= 1e-9 * max(1.0, float(exact))
