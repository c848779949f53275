"""Account CLV at as_of: fitted on earlier wins only, added to a deal's value as `clv`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from closeprob.features.accounts import account_summaries
from closeprob.models.account_value import (
    ACCOUNT_COLUMNS,
    CLV,
    account_values_for_rows,
    add_account_value,
    realised_account_value,
    value_accounts,
)
from tests.conftest import utc

AS_OF = utc("2024-01-01")


def _repeat_buyers(n_accounts: int, seed: int = 0) -> pd.DataFrame:
    """Accounts winning deals at random times over 2023 (and one open deal each at the end)."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(n_accounts):
        first = rng.uniform(0, 200)
        times = first + np.cumsum(rng.exponential(40, rng.integers(1, 6)))
        for k, day in enumerate([first, *times[times < 364]]):
            rows.append((f"A{a}-{k}", f"A{a}", day, "won", float(rng.gamma(4, 250))))
        rows.append((f"A{a}-open", f"A{a}", 364.5, None, 1000.0))
    frame = pd.DataFrame(rows, columns=["deal_id", "account_id", "day", "outcome", "amount"])
    start = utc("2023-01-01")
    frame["created_at"] = start + pd.to_timedelta(frame["day"] - 1, unit="D")
    closed = start + pd.to_timedelta(frame["day"], unit="D")
    frame["closed_at"] = closed.where(frame["outcome"].notna())
    return frame.drop(columns="day")


def test_accounts_get_p_alive_expected_purchases_and_a_positive_clv() -> None:
    summaries = account_summaries(_repeat_buyers(60), AS_OF)
    valued = value_accounts(summaries, 365, 0.1, 20)
    assert list(valued.columns) == ACCOUNT_COLUMNS and len(valued) == 60
    assert valued["account_p_alive"].between(0, 1).all()
    assert (valued["account_expected_purchases"] > 0).all() and (valued["account_clv"] > 0).all()
    # More expected purchases at the same spend: more value (discounting keeps the order).
    shorter = value_accounts(summaries, 90, 0.1, 20)
    assert (shorter["account_clv"] < valued["account_clv"]).all()


def test_too_few_accounts_give_no_clv() -> None:
    summaries = account_summaries(_repeat_buyers(10), AS_OF)
    assert value_accounts(summaries, 365, 0.1, 20).empty


def test_rows_are_valued_at_their_own_as_of_from_earlier_wins_only() -> None:
    deals = _repeat_buyers(60)
    rows = pd.DataFrame({"deal_id": ["A0-open", "A1-open", "A1-open"], "as_of": [AS_OF] * 3})
    values = account_values_for_rows(deals, rows, 365, 0.1, 20)
    assert values.index.equals(rows.index) and values.notna().all().all()
    # Later wins (after as_of) are not seen: adding some changes nothing.
    later = deals.iloc[:5].assign(
        deal_id=lambda d: d["deal_id"] + "-later", closed_at=utc("2024-02-01")
    )
    again = account_values_for_rows(pd.concat([deals, later]), rows, 365, 0.1, 20)
    pd.testing.assert_frame_equal(values, again)


def test_a_deal_without_an_account_or_earlier_win_has_no_clv() -> None:
    deals = _repeat_buyers(60)
    new = pd.DataFrame(
        {
            "deal_id": ["N1", "N2"],
            "account_id": ["NEW", None],
            "outcome": [None, None],
            "amount": [5.0, 5.0],
            "created_at": [AS_OF, AS_OF],
            "closed_at": pd.to_datetime([None, None], utc=True),
        }
    )
    deals = pd.concat([deals, new])
    rows = pd.DataFrame({"deal_id": ["N1", "N2"], "as_of": [AS_OF + pd.Timedelta(days=1)] * 2})
    assert account_values_for_rows(deals, rows, 365, 0.1, 20).isna().all().all()


def test_clv_is_added_to_the_deal_value_where_the_account_has_one() -> None:
    values = pd.DataFrame(
        {"deal_value": [100.0, 100.0, np.nan], "value_source": ["declared", "model", ""]}
    )
    combined = add_account_value(values, np.array([50.0, np.nan, 30.0]))
    assert combined["deal_value"].tolist()[:2] == [150.0, 100.0]
    assert combined["deal_value"].iloc[2] == 30.0
    assert combined["value_source"].tolist() == [CLV, "model", CLV]


def test_realised_account_value_sums_the_accounts_other_wins_within_the_horizon() -> None:
    deals = _repeat_buyers(3)
    a0 = deals[deals["account_id"] == "A0"]
    as_of = a0["closed_at"].dropna().min() - pd.Timedelta(days=1)
    rows = pd.DataFrame({"deal_id": ["A0-0"], "as_of": [as_of]})
    inside = a0[
        (a0["deal_id"] != "A0-0")
        & (a0["closed_at"] > as_of)
        & (a0["closed_at"] <= as_of + pd.Timedelta(days=100))
    ]
    assert realised_account_value(deals, rows, 100)[0] == pytest.approx(inside["amount"].sum())
    assert len(inside) > 0
