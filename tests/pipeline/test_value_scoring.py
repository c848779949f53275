"""Value captured is scored with declared amounts only: an estimate may rank a deal, it never
counts as value won."""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.pipeline.evaluation import declared_row_values, won_values
from tests.conftest import make_deals


def test_rows_without_a_declared_amount_win_nothing_whatever_their_estimate() -> None:
    deals = make_deals(
        [
            {"deal_id": "D1", "created_at": "2024-01-01", "amount": 500.0},
            {"deal_id": "D2", "created_at": "2024-01-01"},  # estimated in the queue, not here
        ]
    )
    declared = declared_row_values(deals, pd.Series(["D2", "D1", "D1"]))
    np.testing.assert_array_equal(np.isnan(declared), [True, False, False])
    np.testing.assert_array_equal(won_values(np.array([1, 1, 0]), declared), [0.0, 500.0, 0.0])


def test_without_any_declared_amount_each_win_counts_one() -> None:
    deals = make_deals([{"deal_id": "D1", "created_at": "2024-01-01"}])
    declared = declared_row_values(deals, pd.Series(["D1", "D1"]))
    np.testing.assert_array_equal(won_values(np.array([1, 0]), declared), [1.0, 0.0])
