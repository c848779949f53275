"""Yardsticks of probabilities that are multiplied by money: proper scores (log loss, Brier and
its reliability/resolution parts), calibration intercept and slope, ECE over equal-mass bins,
each with a deal-bootstrap interval; paired differences between two models on the same rows.

ECE alone is not a proper score: a constant at each week's won rate scores near 0 while
ranking nothing. Read it beside log loss and the Brier decomposition, whose resolution term
rewards telling deals apart. Held-out rows only; no disk, no MLflow.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

from closeprob.models.metrics import (
    WeightedRanking,
    deal_bootstrap_weights,
    expected_calibration_error,
)

EPS = 1e-6


def _arrays(
    y_true: ArrayLike, p: ArrayLike, weights: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, p = np.asarray(y_true, dtype=float), np.asarray(p, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    return y, p, w


def equal_mass_bins(p: np.ndarray, weights: np.ndarray, bins: int) -> np.ndarray:
    """A bin 0..`bins`−1 per row, by rank of `p`: each bin holds about the same total weight
    (rows of equal `p` share a bin, so a bin may hold more)."""
    order = np.argsort(p, kind="stable")
    cumulative = np.cumsum(weights[order])
    total = cumulative[-1] if len(cumulative) else 0.0
    if total <= 0:
        return np.zeros(len(p), dtype=int)
    ranked = np.minimum(((cumulative - weights[order] / 2) / total * bins).astype(int), bins - 1)
    # Ties: every row of one p value takes the bin of the first of them.
    sorted_p = p[order]
    first_of_tie = np.searchsorted(sorted_p, sorted_p, side="left")
    which = np.empty(len(p), dtype=int)
    which[order] = ranked[first_of_tie]
    return which


def equal_mass_ece(
    y_true: ArrayLike, p: ArrayLike, weights: ArrayLike | None = None, bins: int = 10
) -> float:
    """Σ_b (n_b / n) · |mean(y)_b − mean(p)_b| over `bins` bins of equal row count (by p):
    unlike equal-width bins, no bin is nearly empty where few p fall, so the figure moves
    less with the bin count."""
    y, p, w = _arrays(y_true, p, weights)
    if w.sum() <= 0:
        return float("nan")
    which = equal_mass_bins(p, w, bins)
    gap = np.abs(
        np.bincount(which, weights=w * y, minlength=bins)
        - np.bincount(which, weights=w * p, minlength=bins)
    )
    return float(gap.sum() / w.sum())


def brier_decomposition(
    y_true: ArrayLike, p: ArrayLike, weights: ArrayLike | None = None, bins: int = 10
) -> dict[str, float]:
    """Brier score and Murphy's parts over equal-mass bins: reliability (the squared gap
    between each bin's mean p and won rate, weighted: 0 is calibrated; lower is better),
    resolution (how far the bins' won rates spread from the overall rate: higher is better)
    and uncertainty (the rate's own variance, fixed by the rows). Brier ≈ reliability −
    resolution + uncertainty, up to the spread of p within bins."""
    y, p, w = _arrays(y_true, p, weights)
    total = w.sum()
    if total <= 0:
        nan = float("nan")
        return {"brier": nan, "reliability": nan, "resolution": nan, "uncertainty": nan}
    which = equal_mass_bins(p, w, bins)
    count = np.bincount(which, weights=w, minlength=bins)
    used = count > 0
    mean_p = np.bincount(which, weights=w * p, minlength=bins)[used] / count[used]
    rate = np.bincount(which, weights=w * y, minlength=bins)[used] / count[used]
    base = float((w * y).sum() / total)
    share = count[used] / total
    return {
        "brier": float((w * (p - y) ** 2).sum() / total),
        "reliability": float((share * (mean_p - rate) ** 2).sum()),
        "resolution": float((share * (rate - base) ** 2).sum()),
        "uncertainty": base * (1.0 - base),
    }


def weighted_log_loss(y_true: ArrayLike, p: ArrayLike, weights: ArrayLike | None = None) -> float:
    y, raw, w = _arrays(y_true, p, weights)
    clipped = np.clip(raw, 1e-15, 1 - 1e-15)
    return float(-(w * (y * np.log(clipped) + (1 - y) * np.log1p(-clipped))).sum() / w.sum())


def intercept_and_slope(
    y_true: ArrayLike, p: ArrayLike, weights: ArrayLike | None = None
) -> dict[str, float]:
    """Calibration in the large (a of y ~ a + offset(logit p): 0 = right on average, > 0 = p too
    low) and the calibration slope (b of y ~ a + b · logit p: 1 = right spread, < 1 = too
    extreme), rows counted `weights` times; NaN with one class only."""
    y, p, w = _arrays(y_true, p, weights)
    keep = w > 0
    y, p, w = y[keep], p[keep], w[keep]
    if len(np.unique(y)) < 2:
        return {"intercept": float("nan"), "slope": float("nan")}
    score = logit(np.clip(p, EPS, 1 - EPS))
    fitted = LogisticRegression(C=np.inf, max_iter=1000)
    fitted.fit(score.reshape(-1, 1), y, sample_weight=w)
    intercept = brentq(lambda a: float(np.sum(w * (y - expit(a + score)))), -30.0, 30.0)
    return {"intercept": float(intercept), "slope": float(fitted.coef_[0, 0])}


def probability_yardsticks(
    y_true: ArrayLike, p: ArrayLike, weights: ArrayLike | None = None
) -> dict[str, float]:
    """Log loss, the Brier decomposition, ECE over 10 equal-mass bins, intercept and slope."""
    return (
        {"log_loss": weighted_log_loss(y_true, p, weights)}
        | brier_decomposition(y_true, p, weights)
        | {"ece_equal_mass": equal_mass_ece(y_true, p, weights)}
        | intercept_and_slope(y_true, p, weights)
    )


def yardsticks_with_intervals(
    y_true: ArrayLike,
    p: ArrayLike,
    deal_ids: ArrayLike,
    resamples: int = 200,
    seed: int = 0,
    truth: ArrayLike | None = None,
) -> dict[str, float]:
    """`probability_yardsticks` of the rows, each with a 95 % interval (`<name>_lo` / `_hi`)
    from a bootstrap drawing whole deals (a deal's rows in pooled weekly queues are not
    independent). With `truth` (the generator's P(won) per row, built-in data), also the
    distance to it: `truth_mae` and `truth_rmse` of p − truth, and the truth's own log loss."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(p, dtype=float)
    figures = probability_yardsticks(y, p)
    intervals = deal_bootstrap_weights(
        deal_ids, lambda w: probability_yardsticks(y, p, w), resamples, seed
    )
    for name, (low, high) in intervals.items():
        figures[f"{name}_lo"], figures[f"{name}_hi"] = low, high
    if truth is not None:
        true_p = np.asarray(truth, dtype=float)
        if len(true_p) and not np.isnan(true_p).any():
            figures["truth_mae"] = float(np.abs(p - true_p).mean())
            figures["truth_rmse"] = float(np.sqrt(((p - true_p) ** 2).mean()))
            figures["truth_log_loss"] = weighted_log_loss(y, true_p)
    return figures


def paired_differences(
    y_true: ArrayLike,
    p_model: ArrayLike,
    p_other: ArrayLike,
    deal_ids: ArrayLike,
    resamples: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """The model minus another on the same rows, with 95 % intervals from the same deal
    draws for both (paired, so the rows' shared luck cancels): `roc_auc_diff` (> 0: the model
    ranks better) and `log_loss_diff` (< 0: the model's probabilities are better)."""
    y = np.asarray(y_true, dtype=float)
    a, b = np.asarray(p_model, dtype=float), np.asarray(p_other, dtype=float)
    rank_a, rank_b = WeightedRanking(y, a), WeightedRanking(y, b)

    def statistic(w: np.ndarray) -> dict[str, float]:
        return {
            "roc_auc_diff": rank_a.roc_auc(w) - rank_b.roc_auc(w),
            "log_loss_diff": weighted_log_loss(y, a, w) - weighted_log_loss(y, b, w),
        }

    figures = statistic(np.ones(len(y)))
    for name, (low, high) in deal_bootstrap_weights(deal_ids, statistic, resamples, seed).items():
        figures[f"{name}_lo"], figures[f"{name}_hi"] = low, high
    return figures


def base_rate_gap(p_close: ArrayLike, recent_won_rate: float) -> float:
    """A queue's mean p_close minus the recent won rate of comparable open deals (deals open at
    recent dates whose horizon has closed): far from 0, the probabilities have drifted from
    the present base rate (> 0: too high)."""
    return float(np.mean(np.asarray(p_close, dtype=float)) - recent_won_rate)


def pooled_chance_spread(
    p: ArrayLike, deal_ids: ArrayLike, draws: int = 100, seed: int = 0
) -> dict[str, float]:
    """What pooled weekly queues show by chance when `p` is exactly right: outcomes drawn from
    `p` with one uniform draw per deal shared by all its rows (a deal queued in several weeks
    is mostly one outcome event seen several times, not independent rows). Returns the mean
    ECE of those draws (`ece_floor_by_deal`) and the 2.5–97.5 % range of the calibration
    intercept and slope they score (`chance_intercept_lo/_hi`, `chance_slope_lo/_hi`): a
    pooled figure inside its range is as right as these rows can show."""
    p = np.asarray(p, dtype=float)
    codes, n_deals = _deal_codes(deal_ids)
    rng = np.random.default_rng(seed)
    ece, intercepts, slopes = [], [], []
    for _ in range(draws):
        won = (rng.random(n_deals)[codes] < p).astype(float)
        ece.append(expected_calibration_error(won, p))
        figures = intercept_and_slope(won, p)
        intercepts.append(figures["intercept"])
        slopes.append(figures["slope"])
    return {
        "ece_floor_by_deal": float(np.mean(ece)),
        "chance_intercept_lo": float(np.nanpercentile(intercepts, 2.5)),
        "chance_intercept_hi": float(np.nanpercentile(intercepts, 97.5)),
        "chance_slope_lo": float(np.nanpercentile(slopes, 2.5)),
        "chance_slope_hi": float(np.nanpercentile(slopes, 97.5)),
    }


def _deal_codes(deal_ids: ArrayLike) -> tuple[np.ndarray, int]:
    uniques, codes = np.unique(np.asarray(deal_ids).astype(str), return_inverse=True)
    return codes, len(uniques)
