"""Metrics of probabilistic classification, computed on held-out rows only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def expected_calibration_error(y_true: ArrayLike, p: ArrayLike, bins: int = 10) -> float:
    """Σ_b (n_b / n) · |mean(y)_b − mean(p)_b| over `bins` equal-width probability bins."""
    y_true, p = np.asarray(y_true, dtype=float), np.asarray(p, dtype=float)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(
        np.bincount(which, weights=y_true, minlength=bins)
        - np.bincount(which, weights=p, minlength=bins)
    )
    return float(gap.sum() / max(count.sum(), 1))


def ece_noise_floor(p: ArrayLike, draws: int = 200, seed: int = 0) -> float:
    """The ECE a perfectly calibrated forecaster scores on these rows by chance: the mean ECE
    of `p` against outcomes drawn from `p` itself, `draws` times (rows independent, as
    different deals of one queue are). An observed ECE near it is as good as the rows can
    show; a target below it cannot be met by any model."""
    p = np.asarray(p, dtype=float)
    if len(p) == 0:
        return float("nan")
    rng = np.random.default_rng(seed)  # one draw at a time: memory stays one row set
    return float(
        np.mean([expected_calibration_error(rng.random(len(p)) < p, p) for _ in range(draws)])
    )


def classification_metrics(y_true: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), log loss, Brier score and ECE (10 bins)."""
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    return {
        "roc_auc": float(roc_auc_score(y_true, p)),
        "pr_auc": float(average_precision_score(y_true, p)),
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, p)),
        "ece": expected_calibration_error(y_true, p),
    }


def reliability_table(y_true: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, np.ndarray]:
    """Per non-empty bin: mean predicted probability, observed rate and row count."""
    y_true, p = np.asarray(y_true, dtype=float), np.asarray(p, dtype=float)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    used = count > 0
    return {
        "predicted": (np.bincount(which, weights=p, minlength=bins)[used] / count[used]),
        "observed": (np.bincount(which, weights=y_true, minlength=bins)[used] / count[used]),
        "count": count[used],
    }


def precision_at_k(y_true: ArrayLike, score: ArrayLike, k: int) -> float:
    """Share of positives among the `k` highest scores (ties broken by position)."""
    y, s = np.asarray(y_true, dtype=float), np.asarray(score, dtype=float)
    top = np.argsort(-s, kind="stable")[: max(k, 1)]
    return float(y[top].mean())


def lift_at_k(y_true: ArrayLike, score: ArrayLike, k: int) -> float:
    """Precision in the top `k` over the base rate: 2.0 means twice as many wins as at random."""
    base = float(np.mean(np.asarray(y_true, dtype=float)))
    return precision_at_k(y_true, score, k) / base if base > 0 else float("nan")


def value_captured(
    won_value: ArrayLike, score: ArrayLike, groups: ArrayLike, capacity: int
) -> float:
    """Won value in each group's top `capacity` by `score`, over the won value the
    perfect-hindsight queue (top `capacity` by won value) would hold; summed over groups.

    A group is one queue (one `as_of`); `won_value` is the value of rows won within the
    horizon and 0 otherwise. 1.0 = as good as hindsight.
    """
    return float(value_captured_curve(won_value, score, groups, np.array([capacity]))[0])


def value_captured_curve(
    won_value: ArrayLike, score: ArrayLike, groups: ArrayLike, capacities: np.ndarray
) -> np.ndarray:
    """`value_captured` at every capacity in `capacities`, from one sort per ranking."""
    won = np.asarray(won_value, dtype=float)
    group_codes, _ = pd.factorize(pd.Series(np.asarray(groups)), sort=True)
    captured = _top_k_totals(won, np.asarray(score, dtype=float), group_codes, capacities)
    best = _top_k_totals(won, won, group_codes, capacities)
    return np.divide(captured, best, out=np.full(len(best), np.nan), where=best > 0)


def _top_k_totals(
    won: np.ndarray, score: np.ndarray, group_codes: np.ndarray, capacities: np.ndarray
) -> np.ndarray:
    """Sum over groups of `won` in each group's first k rows by descending `score` (ties and
    NaN scores last keep row order), for each k in `capacities`."""
    if len(won) == 0:
        return np.zeros(len(capacities))
    order = np.lexsort((-score, group_codes))  # stable: group ascending, score descending
    sorted_groups = group_codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    by_rank = np.cumsum(np.bincount(rank, weights=won[order]))
    return by_rank[np.clip(np.asarray(capacities, dtype=int), 1, len(by_rank)) - 1]


def segment_metrics(y_true: ArrayLike, p: ArrayLike, segment: ArrayLike) -> pd.DataFrame:
    """ROC-AUC and ECE per segment value (NaN ROC-AUC where a segment has one class only)."""
    frame = pd.DataFrame(
        {"y": np.asarray(y_true), "p": np.asarray(p), "segment": np.asarray(segment)}
    )
    rows = []
    for name, part in frame.groupby(frame["segment"].fillna("(missing)"), sort=True):
        both = part["y"].nunique() == 2
        rows.append(
            {
                "segment": str(name),
                "rows": len(part),
                "positive_rate": float(part["y"].mean()),
                "roc_auc": float(roc_auc_score(part["y"], part["p"])) if both else float("nan"),
                "ece": expected_calibration_error(part["y"], part["p"]),
            }
        )
    return pd.DataFrame(rows)


def ranking_metrics(
    y_true: ArrayLike,
    p: ArrayLike,
    queue_score: ArrayLike,
    won_value: ArrayLike,
    groups: ArrayLike,
    capacity: int,
) -> dict[str, float]:
    """Business metrics of one ranking policy on held-out snapshot rows.

    `p` ranks for precision/lift at the top 10 % of all rows; `queue_score` ranks each queue
    (`groups`, one per as_of) for the at-capacity figures and the won value captured.
    """
    y = np.asarray(y_true, dtype=float)
    k = max(round(0.1 * len(y)), 1)
    frame = pd.DataFrame({"y": y, "score": np.asarray(queue_score, dtype=float)})
    frame["group"] = np.asarray(groups)
    top = frame.sort_values(["group", "score"], ascending=[True, False], kind="stable")
    top = top.groupby("group", sort=False).head(capacity)
    base = float(y.mean())
    return {
        "precision_at_10pct": precision_at_k(y, p, k),
        "lift_at_10pct": lift_at_k(y, p, k),
        "precision_at_capacity": float(top["y"].mean()),
        "lift_at_capacity": float(top["y"].mean() / base) if base > 0 else float("nan"),
        "value_captured_at_capacity": value_captured(won_value, queue_score, groups, capacity),
    }


def calibration_intercept_slope(y_true: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """Calibration in the large and the calibration slope of `p` against outcomes `y_true`.

    slope: b of the logistic regression y ~ a + b · logit(p) (1 = well spread, < 1 = too
    extreme); intercept: a of y ~ a + offset(logit(p)) (0 = right on average, > 0 = p too low).
    NaN when `y_true` has one class only.
    """
    y = np.asarray(y_true, dtype=float)
    if len(np.unique(y)) < 2:
        return {"calibration_intercept": float("nan"), "calibration_slope": float("nan")}
    score = logit(np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6))
    fitted = LogisticRegression(C=np.inf, max_iter=1000).fit(score.reshape(-1, 1), y)
    intercept = brentq(lambda a: float(np.sum(y - expit(a + score))), -30.0, 30.0)
    return {
        "calibration_intercept": float(intercept),
        "calibration_slope": float(fitted.coef_[0, 0]),
    }


def deal_bootstrap(
    deal_ids: ArrayLike,
    statistic: Callable[[np.ndarray], dict[str, float]],
    resamples: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of `statistic` (row indices → named figures) over resamples that
    draw whole deals with replacement: a deal's snapshot rows are correlated, so resampling
    rows would understate the uncertainty. Resamples where a figure is NaN are skipped."""
    codes, _ = pd.factorize(pd.Series(np.asarray(deal_ids)))
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    starts = np.cumsum(counts) - counts
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        chosen = rng.integers(0, len(counts), len(counts))
        sizes = counts[chosen]
        offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        rows = order[np.repeat(starts[chosen], sizes) + offsets]
        for name, value in statistic(rows).items():
            draws.setdefault(name, []).append(value)
    tail = 100 * (1 - level) / 2
    intervals = {}
    for name, values in draws.items():
        finite = np.asarray(values, dtype=float)
        finite = finite[np.isfinite(finite)]
        intervals[name] = (
            (float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail)))
            if len(finite)
            else (float("nan"), float("nan"))
        )
    return intervals
