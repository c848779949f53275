"""Evaluation on the test slice: the model against the baselines, in the same metrics."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from closeprob.features.registry import categorical_features
from closeprob.models.baselines import (
    account_history,
    account_rfm_scores,
    fit_logistic,
    fit_score_map,
    map_scores,
    predict_logistic,
    recency_scores,
    rfm_scores,
)
from closeprob.models.metrics import (
    WeightedCalibrationLine,
    WeightedCapture,
    WeightedRanking,
    classification_metrics,
    deal_bootstrap_weights,
    ranking_metrics,
    segment_metrics,
    value_captured_curve,
    weighted_ece,
)
from closeprob.models.quotes import latest_quotes
from closeprob.models.value import DealValueModel, deal_values
from closeprob.pipeline.account_values import (
    clv_baseline,
    value_source_metrics,
)
from closeprob.pipeline.config import Config
from closeprob.pipeline.core import Dataset, Evaluation, PolicyScores, TrainingData, TrainingResult
from closeprob.pipeline.oracle import oracle_close_probability
from closeprob.pipeline.plots import (
    gain_figure,
    reliability_figure,
    score_histogram_figure,
    value_captured_figure,
)

log = logging.getLogger(__name__)


def row_values(
    deals: pd.DataFrame,
    deal_ids: pd.Series,
    value_model: DealValueModel | None,
    quotes: np.ndarray | None = None,
) -> np.ndarray:
    """Each snapshot row's deal value as the batch job would use it (declared, else the
    latest quote before the row's as_of, `snapshot_quotes`, else estimated)."""
    rows = deals.set_index("deal_id").loc[deal_ids.to_numpy()].reset_index()
    return deal_values(rows, value_model, quotes)["deal_value"].to_numpy(dtype=float)


def snapshot_quotes(dataset: Dataset, data: TrainingData) -> np.ndarray:
    """Each snapshot row's latest quote strictly before its as_of (`models/quotes.py`)."""
    rows = data.features[["deal_id", "as_of"]]
    return latest_quotes(dataset.interactions, rows, data.spec.stage_event_type)


def declared_row_values(deals: pd.DataFrame, deal_ids: pd.Series) -> np.ndarray:
    """Each snapshot row's declared amount (NaN where the deal has none): the truth value
    captured is scored with, so that an estimator is never judged by its own estimates."""
    amounts = deals.set_index("deal_id")["amount"]
    return amounts.reindex(deal_ids.to_numpy()).to_numpy(dtype=float, na_value=np.nan)


def won_values(labels: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Value won within the horizon per row; without any values, each win counts 1."""
    if np.isnan(value).all():
        return np.asarray(labels, dtype=float)
    return np.asarray(labels, dtype=float) * np.nan_to_num(value, nan=0.0)


def expected_values(p: np.ndarray, value: np.ndarray) -> np.ndarray:
    """p × value; with no values at all, p alone (as the batch job ranks)."""
    if np.isnan(value).all():
        return p
    return p * np.nan_to_num(value, nan=0.0)


def rows_metrics(
    data: TrainingData, rows: pd.Series, scores: PolicyScores, value: np.ndarray, capacity: int
) -> dict[str, float]:
    """Classification and ranking metrics of one policy on `rows` (a mask over the snapshot
    rows; `scores` and `value` are aligned with the rows it selects)."""
    labels = data.labels[rows].to_numpy()
    groups = data.features.loc[rows, "as_of"].to_numpy()
    metrics = classification_metrics(labels, scores.p_close)
    metrics |= ranking_metrics(
        labels, scores.p_close, scores.queue_score, won_values(labels, value), groups, capacity
    )
    return metrics


def test_metrics(
    data: TrainingData, scores: PolicyScores, value: np.ndarray, capacity: int
) -> dict[str, float]:
    """Every test_* metric of one policy."""
    metrics = rows_metrics(data, data.rows("test"), scores, value, capacity)
    return {f"test_{k}": v for k, v in metrics.items()}


INTERVAL_METRICS = (
    "roc_auc",
    "ece",
    "value_captured_at_capacity",
    "calibration_intercept",
    "calibration_slope",
)


def test_intervals(
    data: TrainingData,
    scores: PolicyScores,
    value: np.ndarray,
    capacity: int,
    resamples: int,
    seed: int,
) -> dict[str, float]:
    """95 % intervals (`test_<metric>_lo` / `_hi`) of ROC-AUC, ECE, value captured and the
    calibration intercept and slope, from a bootstrap that resamples the test slice's deals
    (all rows of a drawn deal together); with the intercept and slope themselves
    (`test_calibration_intercept`, `test_calibration_slope`: 0 and 1 when calibrated)."""
    test = data.rows("test")
    labels = data.labels[test].to_numpy()
    groups = data.features.loc[test, "as_of"].to_numpy()
    won = won_values(labels, value)

    ranking = WeightedRanking(labels, scores.p_close)
    # A deal drawn twice is two queue entries of the same week: still one queue per as_of.
    capture = WeightedCapture(won, scores.queue_score, groups, capacity)
    line = WeightedCalibrationLine(labels, scores.p_close)

    def statistic(weights: np.ndarray) -> dict[str, float]:
        return {
            "roc_auc": ranking.roc_auc(weights),
            "ece": weighted_ece(labels, scores.p_close, weights),
            "value_captured_at_capacity": capture.value_captured(weights),
        } | line.fit(weights)

    deal_ids = data.features.loc[test, "deal_id"].to_numpy()
    intervals = deal_bootstrap_weights(deal_ids, statistic, resamples, seed)
    metrics = {
        f"test_{name}": value
        for name, value in WeightedCalibrationLine.exact(labels, scores.p_close).items()
    }
    for name in INTERVAL_METRICS:
        low, high = intervals[name]
        metrics[f"test_{name}_lo"], metrics[f"test_{name}_hi"] = low, high
    return metrics


def policy_scores(result: TrainingResult, dataset: Dataset, config: Config) -> list[PolicyScores]:
    """The model and the baselines, scored on the same test rows."""
    data = result.data
    values = row_values(
        dataset.deals,
        data.features["deal_id"],
        result.evaluated_value_model,
        snapshot_quotes(dataset, data),
    )
    test, calibration = data.rows("test").to_numpy(), data.rows("calibration").to_numpy()
    v_test = values[test]
    categorical = categorical_features(data.spec)
    names = result.model.feature_names
    # On the rows the evaluated model is fitted on: every slice before the test embargo.
    fitted = data.rows("train") | data.rows("validation") | data.rows("calibration")
    logistic = fit_logistic(
        data.features.loc[fitted, names], data.labels[fitted], categorical, config.seed
    )
    p_logistic = predict_logistic(logistic, data.features.loc[test, names], categorical)
    rfm = rfm_scores(data.features, values, data.features["as_of"])
    log_value = np.log1p(
        np.nan_to_num(values, nan=np.nanmedian(values) if not np.isnan(values).all() else 0.0)
    )
    history = account_history(dataset.deals, data.features)
    rfm_account = account_rfm_scores(history, data.features["as_of"])
    recency = recency_scores(history)
    y_cal = data.labels[calibration].to_numpy()
    rfm_map = fit_score_map(rfm[calibration], y_cal)
    value_map = fit_score_map(log_value[calibration], y_cal)
    clv = clv_baseline(dataset.deals, data.features, calibration, test, y_cal, config.value)
    account_map = fit_score_map(rfm_account[calibration], y_cal)
    recency_map = fit_score_map(recency[calibration], y_cal)
    return [
        PolicyScores(
            "lightgbm_calibrated", result.test_p_close, expected_values(result.test_p_close, v_test)
        ),
        PolicyScores(
            "lightgbm_uncalibrated", result.test_p_raw, expected_values(result.test_p_raw, v_test)
        ),
        PolicyScores("logistic", p_logistic, expected_values(p_logistic, v_test)),
        PolicyScores("rfm", map_scores(rfm_map, rfm[test]), rfm[test]),
        PolicyScores("abc_value", map_scores(value_map, log_value[test]), log_value[test]),
        *([] if clv is None else [PolicyScores("clv_expected_purchases", *clv)]),
        PolicyScores("rfm_account", map_scores(account_map, rfm_account[test]), rfm_account[test]),
        PolicyScores("recency", map_scores(recency_map, recency[test]), recency[test]),
    ]


def segment_table(
    data: TrainingData, p_close: np.ndarray, dataset: Dataset, segment: str | None
) -> pd.DataFrame | None:
    """Per-segment ROC-AUC and ECE of the test slice, by a deal attribute."""
    if segment is None or segment not in dataset.deals.columns:
        return None
    test = data.rows("test")
    by_deal = dataset.deals.set_index("deal_id")[segment]
    return segment_metrics(
        data.labels[test], p_close, data.features.loc[test, "deal_id"].map(by_deal)
    )


def oracle_metrics(data: TrainingData, dataset: Dataset, config: Config) -> dict[str, float]:
    """test_oracle_roc_auc, test_oracle_log_loss and test_oracle_ece: the generator's true
    P(won within the horizon) on the test rows, the best any model could do. Empty without a
    truth file (any data but the built-in synthetic CRM)."""
    if dataset.truth is None:
        return {}

    test = data.rows("test")
    oracle = oracle_close_probability(
        dataset.truth,
        data.features.loc[test, ["deal_id", "as_of"]],
        dataset.deals,
        config.snapshots.horizon_days,
    )
    metrics = classification_metrics(data.labels[test], oracle.to_numpy())
    return {
        "test_oracle_roc_auc": metrics["roc_auc"],
        "test_oracle_log_loss": metrics["log_loss"],
        "test_oracle_ece": metrics["ece"],
    }


def capture_curves(
    data: TrainingData, policies: list[PolicyScores], value: np.ndarray, capacities: np.ndarray
) -> dict[str, np.ndarray]:
    """Won value captured per capacity, for each policy (for the value-captured chart)."""
    test = data.rows("test")
    labels = data.labels[test].to_numpy()
    groups = data.features.loc[test, "as_of"].to_numpy()
    won = won_values(labels, value)
    return {
        policy.family: value_captured_curve(won, policy.queue_score, groups, capacities)
        for policy in policies
    }


def model_policies(result: TrainingResult) -> list[PolicyScores]:
    """The trained model's two policies (calibrated and raw), without any baseline."""
    return [
        PolicyScores("lightgbm_calibrated", result.test_p_close, result.test_p_close),
        PolicyScores("lightgbm_uncalibrated", result.test_p_raw, result.test_p_raw),
    ]


def evaluate_policies(
    result: TrainingResult, dataset: Dataset, config: Config, policies: list[PolicyScores]
) -> list[Evaluation]:
    """Metrics and figures for each policy; the comparison charts go with the first policy.

    Queue scores of the model policies are recomputed as p × value here.
    """
    data = result.data
    test = data.rows("test")
    value = row_values(
        dataset.deals,
        data.features["deal_id"],
        result.evaluated_value_model,
        snapshot_quotes(dataset, data),
    )[test.to_numpy()]
    declared = declared_row_values(dataset.deals, data.features.loc[test, "deal_id"])
    policies = [
        PolicyScores(p.family, p.p_close, expected_values(p.p_close, value))
        if p.family.startswith("lightgbm") or p.family == "logistic"
        else p
        for p in policies
    ]
    capacity = config.evaluation.capacity
    labels = data.labels[test].to_numpy()
    capacities = np.unique(np.linspace(1, max(capacity * 4, 10), 40).astype(int))
    evaluations = []
    for index, policy in enumerate(policies):
        figures: dict[str, Figure] = {
            "reliability.png": reliability_figure(
                labels,
                {policy.family: policy.p_close},
                f"Reliability on the test slice: {policy.family}",
            ),
            "score_histogram.png": score_histogram_figure(labels, policy.p_close),
        }
        if index == 0:
            figures["gain_lift.png"] = gain_figure(labels, {p.family: p.p_close for p in policies})
            curves = capture_curves(data, policies, declared, capacities)
            figures["value_captured.png"] = value_captured_figure(curves, capacities, capacity)
        metrics = test_metrics(data, policy, declared, capacity)
        if index == 0:
            metrics |= test_intervals(
                data, policy, declared, capacity, config.evaluation.bootstrap_resamples, config.seed
            )
            rows = data.features.loc[test, ["deal_id", "as_of"]]
            metrics |= value_source_metrics(
                dataset.deals, rows, labels, policy.p_close, value, config.value, capacity
            )
        evaluations.append(
            Evaluation(
                family=policy.family,
                metrics=metrics,
                figures=figures,
                segments=segment_table(data, policy.p_close, dataset, config.evaluation.segment),
            )
        )
    return evaluations
