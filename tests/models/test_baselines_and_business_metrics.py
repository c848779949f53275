"""The baselines and the business metrics on tiny hand-built arrays, against values worked out
by hand in the comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from closeprob.models.baselines import (
    fit_logistic,
    fit_score_map,
    map_scores,
    predict_logistic,
    rfm_scores,
)
from closeprob.models.metrics import ranking_metrics, segment_metrics

# --- ranking_metrics: two queues (as_of A and B) of five rows, capacity 2 ---------------------

Y = np.array([1, 0, 1, 0, 0, 0, 1, 0, 0, 0])
P = np.array([0.9, 0.8, 0.3, 0.2, 0.1, 0.7, 0.6, 0.5, 0.4, 0.05])
QUEUE_SCORE = np.array([5, 9, 4, 1, 0, 3, 2, 8, 1, 0], dtype=float)
WON_VALUE = np.array([100, 0, 300, 0, 0, 0, 50, 0, 0, 0], dtype=float)
GROUPS = np.array(["A"] * 5 + ["B"] * 5)


def test_ranking_metrics_equal_the_hand_computed_figures() -> None:
    metrics = ranking_metrics(Y, P, QUEUE_SCORE, WON_VALUE, GROUPS, capacity=2)
    # Top 10 % of 10 rows = 1 row by p: row 0 (0.9), a win. Base rate 3/10.
    assert metrics["precision_at_10pct"] == 1.0
    assert metrics["lift_at_10pct"] == pytest.approx(1.0 / 0.3)
    # Queue A's top 2 by queue score: rows 1 (9) and 0 (5) → 1 win; B's: rows 7 (8) and 5 (3)
    # → 0 wins. 1 win in 4 rows.
    assert metrics["precision_at_capacity"] == 0.25
    assert metrics["lift_at_capacity"] == pytest.approx(0.25 / 0.3)
    # Won value held: A 0 + 100, B 0 + 0 = 100; hindsight: A 300 + 100, B 50 + 0 = 450.
    assert metrics["value_captured_at_capacity"] == pytest.approx(100 / 450)


def test_ranking_metrics_without_any_win_have_undefined_lift_and_value_captured() -> None:
    zeros = np.zeros(10)
    metrics = ranking_metrics(zeros, P, QUEUE_SCORE, zeros, GROUPS, capacity=2)
    assert metrics["precision_at_capacity"] == 0.0
    assert np.isnan(metrics["lift_at_capacity"]) and np.isnan(metrics["lift_at_10pct"])
    assert np.isnan(metrics["value_captured_at_capacity"])


# --- segment_metrics ---------------------------------------------------------------------------


def test_segment_metrics_give_rows_rate_roc_auc_and_ece_per_segment() -> None:
    y = np.array([0, 1, 1, 0, 1, 1])
    p = np.array([0.2, 0.8, 0.6, 0.4, 0.9, 0.9])
    segment = np.array(["a", "a", "a", "a", "b", None], dtype=object)
    table = segment_metrics(y, p, segment)
    assert table["segment"].tolist() == ["(missing)", "a", "b"]
    assert table["rows"].tolist() == [1, 4, 1]
    assert table["positive_rate"].tolist() == [1.0, 0.5, 1.0]
    # 'a': both wins (0.8, 0.6) score above both losses (0.2, 0.4); one class elsewhere.
    assert table["roc_auc"].iloc[1] == 1.0
    assert table["roc_auc"].iloc[[0, 2]].isna().all()
    # 'a': one row per bin, gaps 0.2 + 0.2 + 0.4 + 0.4 over 4 rows; 'b' and missing: 1 − 0.9.
    assert table["ece"].tolist() == pytest.approx([0.1, 0.3, 0.1])


# --- baselines ---------------------------------------------------------------------------------


def test_rfm_sums_recency_frequency_and_monetary_quintiles_within_each_queue() -> None:
    features = pd.DataFrame(
        {
            "days_since_last_touch": [1.0, 2.0, 3.0, 4.0, np.nan],
            "touches_total": [10.0, 0.0, 5.0, 5.0, 1.0],
        }
    )
    value = np.array([100.0, np.nan, 300.0, 200.0, 50.0])
    # Recency (fewer days is better): 1 d → 5, 2 d → 4, 3 d → 3, 4 d → 2, none → 1.
    # Frequency: 10 → 5, 0 → 1, 5 and 5 (tied, mean rank 3.5 of 5) → 4, 1 → 2.
    # Monetary: 300 → 5, 200 → 4, 100 → 3, 50 → 2, missing → 1.
    expected = [5 + 5 + 3, 4 + 1 + 1, 3 + 4 + 5, 2 + 4 + 4, 1 + 2 + 2]
    one_queue = rfm_scores(features, value, pd.Series(0, index=features.index))
    assert one_queue.tolist() == expected
    # Two queues holding the same rows score each row as within its own queue.
    both = pd.concat([features, features], ignore_index=True)
    groups = pd.Series([0] * 5 + [1] * 5)
    assert rfm_scores(both, np.r_[value, value], groups).tolist() == expected * 2


def test_the_score_map_is_a_monotone_probability_that_keeps_the_baseline_ranking() -> None:
    score = np.array([3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 4.0])
    y = np.array([0, 0, 1, 0, 1, 1, 1, 0])
    p = map_scores(fit_score_map(score, y), score)
    assert ((p > 0) & (p < 1)).all()
    assert (np.argsort(p, kind="stable") == np.argsort(score, kind="stable")).all()
    assert np.all(np.diff(p[np.argsort(score)]) > 0)


def test_the_logistic_baseline_learns_a_separable_signal_and_ignores_unseen_levels() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    train = pd.DataFrame(
        {
            "signal": x,
            "noise": np.where(rng.random(200) < 0.1, np.nan, rng.normal(size=200)),
            "attr_source": pd.Categorical(rng.choice(["web", "referral"], size=200)),
        }
    )
    y = pd.Series((x > 0).astype(int))
    model = fit_logistic(train, y, ["attr_source"], seed=0)
    rows = pd.DataFrame(
        {
            "signal": [-2.0, 2.0, 2.0],
            "noise": [0.0, np.nan, 0.0],
            "attr_source": pd.Categorical(["web", "never seen", None]),
        }
    )
    p = predict_logistic(model, rows, ["attr_source"])
    assert p[0] < 0.1 and p[1] > 0.9 and p[2] > 0.9


# --- customer-level RFM: the account's wins strictly before as_of -----------------------------


def test_account_history_counts_only_the_accounts_wins_before_as_of() -> None:
    from closeprob.models.baselines import account_history, account_rfm_scores, recency_scores
    from tests.conftest import make_deals, utc

    deals = make_deals(
        [
            {
                "deal_id": "W1",
                "created_at": "2024-01-01",
                "closed_at": "2024-01-10",
                "outcome": "won",
                "amount": 100.0,
                "account_id": "A1",
            },
            {
                "deal_id": "W2",
                "created_at": "2024-01-01",
                "closed_at": "2024-02-01",
                "outcome": "won",
                "amount": 300.0,
                "account_id": "A1",
            },
            {
                "deal_id": "L1",
                "created_at": "2024-01-01",
                "closed_at": "2024-01-20",
                "outcome": "lost",
                "amount": 900.0,
                "account_id": "A2",
            },
            {"deal_id": "O1", "created_at": "2024-01-05", "account_id": "A1"},
            {"deal_id": "O2", "created_at": "2024-01-05", "account_id": "A2"},
            {"deal_id": "O3", "created_at": "2024-01-05", "account_id": None},
        ]
    )
    rows = pd.DataFrame(
        {
            "deal_id": ["O1", "O1", "O2", "O3"],
            "as_of": [utc("2024-02-01"), utc("2024-02-11"), utc("2024-02-11"), utc("2024-02-11")],
        }
    )
    history = account_history(deals, rows)
    # O1 on 02-01: W1 only (W2 closes at as_of, not yet known); on 02-11: both, last 10 days ago.
    assert history["account_recency_days"].tolist()[:2] == [22.0, 10.0]
    assert history["account_frequency"].tolist() == [1.0, 2.0, 0.0, 0.0]
    assert history["account_monetary"].tolist()[:2] == [100.0, 200.0]
    assert history.iloc[2:].isna()[["account_recency_days", "account_monetary"]].all().all()
    scores = account_rfm_scores(history, pd.Series(["A", "B", "B", "B"]))
    assert scores[1] > scores[2] == scores[3] == 3.0
    recency = recency_scores(history)
    assert recency[1] > recency[0] > recency[2] == recency[3]


def test_without_an_account_column_customer_rfm_has_no_history() -> None:
    from closeprob.models.baselines import account_history
    from tests.conftest import make_deals, utc

    deals = make_deals([{"deal_id": "D1", "created_at": "2024-01-01"}]).drop(columns="account_id")
    history = account_history(
        deals, pd.DataFrame({"deal_id": ["D1"], "as_of": [utc("2024-02-01")]})
    )
    assert history["account_frequency"].tolist() == [0.0]
    assert history["account_recency_days"].isna().all()
