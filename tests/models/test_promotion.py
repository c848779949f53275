"""The champion/challenger rule."""

from __future__ import annotations

import numpy as np

from closeprob.models.metrics import classification_metrics, ranking_metrics
from closeprob.models.promotion import PROMOTABLE_METRICS, decide_promotion

PRIMARY = "test_value_captured_at_capacity"


def _metrics(captured: float, log_loss: float) -> dict[str, float]:
    return {PRIMARY: captured, "test_log_loss": log_loss}


def test_a_better_challenger_within_the_log_loss_tolerance_is_promoted() -> None:
    decision = decide_promotion(_metrics(0.70, 0.345), _metrics(0.65, 0.340), PRIMARY, 0.01)
    assert decision.promote
    assert "0.7000 > 0.6500" in decision.reason


def test_an_equal_challenger_is_not_promoted() -> None:
    decision = decide_promotion(_metrics(0.65, 0.30), _metrics(0.65, 0.34), PRIMARY, 0.01)
    assert not decision.promote
    assert "not better" in decision.reason


def test_a_challenger_much_worse_on_log_loss_is_not_promoted() -> None:
    decision = decide_promotion(_metrics(0.70, 0.40), _metrics(0.65, 0.34), PRIMARY, 0.01)
    assert not decision.promote
    assert "log_loss" in decision.reason


def test_without_values_log_loss_alone_decides() -> None:
    nan = float("nan")
    assert decide_promotion(_metrics(nan, 0.30), _metrics(nan, 0.34), PRIMARY, 0.01).promote
    assert not decide_promotion(_metrics(nan, 0.35), _metrics(nan, 0.34), PRIMARY, 0.01).promote


def test_the_promotable_metrics_are_the_higher_is_better_test_metrics_training_logs() -> None:
    """PROMOTABLE_METRICS (the choices of evaluation.primary_metric) is written out so that a
    config loads without scikit-learn; it must stay what the metric functions return."""
    y, p = np.array([0.0, 1.0]), np.array([0.25, 0.75])
    names = [*classification_metrics(y, p), *ranking_metrics(y, p, p, y, np.zeros(2), 1)]
    lower_is_better = {"log_loss", "brier", "ece"}
    assert tuple(f"test_{n}" for n in names if n not in lower_is_better) == PROMOTABLE_METRICS


def test_the_rule_reads_the_named_loss_metric_for_comparison_rows() -> None:
    primary = "comparison_value_captured_at_capacity"
    new = {primary: 0.70, "comparison_log_loss": 0.50}
    old = {primary: 0.65, "comparison_log_loss": 0.34}
    decision = decide_promotion(new, old, primary, 0.01, "comparison_log_loss")
    assert not decision.promote
    assert "comparison_log_loss 0.5000" in decision.reason
