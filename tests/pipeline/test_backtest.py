"""The backtest trains only on what was known at each as_of."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from closeprob.pipeline.cli import main
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.jobs.backtest import known_at, tier_churn
from tests.conftest import make_deals, make_interactions, utc, write_small_crm


def test_known_at_hides_later_closes_outcomes_deals_and_events() -> None:
    deals = make_deals(
        [
            {
                "deal_id": "D1",
                "created_at": "2024-01-01",
                "closed_at": "2024-02-01",
                "outcome": "won",
            },
            {
                "deal_id": "D2",
                "created_at": "2024-01-05",
                "closed_at": "2024-04-01",
                "outcome": "lost",
            },
            {"deal_id": "D3", "created_at": "2024-03-05"},
        ]
    )
    events = make_interactions(
        [
            {"deal_id": "D2", "occurred_at": "2024-02-10", "type": "call"},
            {"deal_id": "D2", "occurred_at": "2024-03-01", "type": "call"},
        ]
    )
    past = known_at(Dataset(deals, events, None), utc("2024-03-01"))
    assert past.deals["deal_id"].tolist() == ["D1", "D2"]
    assert past.deals["outcome"].tolist()[0] == "won"
    assert pd.isna(past.deals["outcome"].iloc[1]) and pd.isna(past.deals["closed_at"].iloc[1])
    assert past.interactions["occurred_at"].tolist() == [utc("2024-02-10")]
    assert past.truth is None


def test_tier_churn_counts_changes_among_deals_in_both_weeks() -> None:
    before = pd.Series({"D1": "A", "D2": "B", "D3": "C"})
    after = pd.Series({"D1": "A", "D2": "A", "D4": "C"})
    assert tier_churn(before, after) == 0.5


@pytest.mark.slow
def test_the_backtest_logs_the_queues_calibration_per_week_and_in_the_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_small_crm(tmp_path, 1500)
    argv = ["backtest", "--config", str(config), "--weeks", "2", "--retrain-every", "2"]
    assert main(argv) == 0  # one deployed fit, scored on two weekly queues
    printed = capsys.readouterr().out
    assert "mean calibration of the queue's p_close against what happened: ece" in printed
    client = MlflowClient()
    experiment = client.get_experiment_by_name("close-probability")
    (run,) = client.search_runs([experiment.experiment_id])
    metrics = run.data.metrics
    for name in ("ece", "log_loss", "brier", "calibration_intercept", "calibration_slope"):
        assert f"mean_{name}" in metrics and f"week_{name}" in metrics
    assert 0.0 <= metrics["mean_ece"] <= 1.0 and 0.0 < metrics["mean_brier"] < 0.25
    assert metrics["mean_calibration_slope"] > 0.0
    history = client.get_metric_history(run.info.run_id, "week_ece")
    assert [m.step for m in history] == [0, 1]
    # What the rows allow: a calibrated queue's chance ECE, and the generator's truth.
    assert 0.0 < metrics["mean_ece_floor"] < 0.3
    assert 0.0 <= metrics["mean_oracle_ece"] < 0.3 and 0.0 < metrics["mean_oracle_mean_p"] < 1.0
    assert metrics["pooled_rows"] > 0 and 0.0 <= metrics["pooled_ece"] <= 1.0
    assert metrics["pooled_ece_floor"] < metrics["mean_ece_floor"]  # more rows, less chance
    assert "ECE a perfectly calibrated queue scores by chance on these rows" in printed
    # A deal queued in both weeks is one outcome seen twice: a higher floor than rows drawn
    # apart, and a range of pooled slopes that holds 1.
    assert metrics["pooled_ece_floor_by_deal"] > metrics["pooled_ece_floor"]
    assert metrics["pooled_chance_slope_lo"] < 1.0 < metrics["pooled_chance_slope_hi"]
    assert "a perfectly calibrated queue pooled over these weeks scores by chance" in printed
    # Pooled yardsticks with deal-bootstrap intervals, the truth's distance, the base-rate check.
    for name in ("intercept", "slope", "log_loss", "reliability", "resolution", "ece_equal_mass"):
        low, high = metrics[f"pooled_{name}_lo"], metrics[f"pooled_{name}_hi"]
        assert low < high and np.isfinite(metrics[f"pooled_{name}"])
    assert 0.0 < metrics["pooled_truth_mae"] < 0.2
    assert 0.0 < metrics["mean_recent_won_rate"] < 1.0
    assert abs(metrics["mean_base_rate_gap"]) < 0.3
    assert "pooled, 95 % intervals over deals: intercept" in printed
    assert "base-rate check: mean p_close minus the recent won rate" in printed
