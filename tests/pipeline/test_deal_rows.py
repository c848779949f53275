"""The queue's deal rows are looked up by Arrow's hash, as pandas' `.loc` on the deal ids."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.pipeline.scoring import deal_rows


@settings(max_examples=50, deadline=None)
@given(st.data(), st.integers(1, 12))
def test_deal_rows_are_the_rows_loc_gives_in_the_ids_order(data: st.DataObject, n: int) -> None:
    deals = pd.DataFrame(
        {
            "deal_id": pd.Series([f"D{i}" for i in range(n)], dtype="str"),
            "amount": [float(i) if i % 3 else None for i in range(n)],
            "owner_id": pd.Series([f"U{i % 2}" if i % 4 else None for i in range(n)], dtype="str"),
        }
    )
    ids = pd.Series(
        data.draw(st.permutations(list(deals["deal_id"])))[: data.draw(st.integers(0, n))],
        dtype="str",
    )
    expected = deals.set_index("deal_id").loc[ids].reset_index()
    pd.testing.assert_frame_equal(deal_rows(deals, ids), expected[deals.columns])


def test_an_id_not_among_the_deals_is_a_key_error_naming_it() -> None:
    deals = pd.DataFrame({"deal_id": ["D1", "D2"], "amount": [1.0, 2.0]})
    with pytest.raises(KeyError, match="D9"):
        deal_rows(deals, pd.Series(["D2", "D9"]))
