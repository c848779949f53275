"""Metrics of probabilistic classification, computed on held-out rows only."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

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

    def rows_of(chosen: np.ndarray) -> np.ndarray:
        sizes = counts[chosen]
        offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return np.asarray(order[np.repeat(starts[chosen], sizes) + offsets])

    return _percentiles(
        (statistic(rows_of(chosen)) for chosen in _deal_draws(len(counts), resamples, seed)),
        level,
    )


def deal_bootstrap_weights(
    deal_ids: ArrayLike,
    statistic: Callable[[np.ndarray], dict[str, float]],
    resamples: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """`deal_bootstrap` with the same draws, handing `statistic` each row's multiplicity (how
    often its deal was drawn) instead of the rows themselves: statistics that take weights
    (`WeightedRanking.roc_auc`, `weighted_ece`, `WeightedCapture`) then sort once, not per resample
    (800 k test rows: seconds instead of minutes)."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(deal_ids)))
    n_deals = len(uniques)
    return _percentiles(
        (
            statistic(np.bincount(chosen, minlength=n_deals)[codes].astype(float))
            for chosen in _deal_draws(n_deals, resamples, seed)
        ),
        level,
    )


def _deal_draws(n_deals: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield rng.integers(0, n_deals, n_deals)


def _percentiles(
    figures: Iterable[dict[str, float]], level: float
) -> dict[str, tuple[float, float]]:
    draws: dict[str, list[float]] = {}
    for figure in figures:
        for name, value in figure.items():
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


class WeightedRanking:
    """Rows sorted once by a score, so that weighted ROC-AUC can be read for any row weights
    in one pass (ties share their rank, as in `roc_auc_score`)."""

    def __init__(self, y_true: ArrayLike, score: ArrayLike) -> None:
        score = np.asarray(score, dtype=float)
        self.order = np.argsort(score, kind="stable")
        self.y = np.asarray(y_true, dtype=float)[self.order]
        ranked = score[self.order]
        self.tie_starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])

    def roc_auc(self, weights: np.ndarray) -> float:
        """ROC-AUC of the rows, each counted `weights` times (NaN with one class only)."""
        w = np.asarray(weights, dtype=float)[self.order]
        positive = np.add.reduceat(w * self.y, self.tie_starts)
        negative = np.add.reduceat(w * (1.0 - self.y), self.tie_starts)
        total_pos, total_neg = positive.sum(), negative.sum()
        if total_pos <= 0 or total_neg <= 0:
            return float("nan")
        below = np.cumsum(negative) - negative
        return float((positive * (below + 0.5 * negative)).sum() / (total_pos * total_neg))


def weighted_ece(y_true: ArrayLike, p: ArrayLike, weights: ArrayLike, bins: int = 10) -> float:
    """`expected_calibration_error` with each row counted `weights` times."""
    y, p, w = (np.asarray(a, dtype=float) for a in (y_true, p, weights))
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    gap = np.abs(
        np.bincount(which, weights=w * y, minlength=bins)
        - np.bincount(which, weights=w * p, minlength=bins)
    )
    return float(gap.sum() / max(w.sum(), 1e-300))


class WeightedCapture:
    """`value_captured` at one capacity for any row weights (a row of weight k is k queue
    entries), from one sort per ranking: each queue's entries are counted in score order until
    `capacity` entries are in."""

    def __init__(
        self, won_value: ArrayLike, score: ArrayLike, groups: ArrayLike, capacity: int
    ) -> None:
        self.won = np.asarray(won_value, dtype=float)
        codes, _ = pd.factorize(pd.Series(np.asarray(groups)), sort=True)
        self.capacity = float(capacity)
        self.by_score = self._ranking(np.asarray(score, dtype=float), codes)
        self.by_won = self._ranking(self.won, codes)

    @staticmethod
    def _ranking(score: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.lexsort((-score, codes))  # as `_top_k_totals`: group, then score descending
        sorted_codes = codes[order]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        return order, starts

    def _top(self, ranking: tuple[np.ndarray, np.ndarray], weights: np.ndarray) -> float:
        order, starts = ranking
        w = weights[order]
        cumulative = np.cumsum(w)
        group_start = np.repeat(cumulative[starts] - w[starts], np.diff(np.r_[starts, len(order)]))
        before = cumulative - w - group_start  # entries of the same queue ranked higher
        taken = np.clip(self.capacity - before, 0.0, w)
        return float((self.won[order] * taken).sum())

    def value_captured(self, weights: ArrayLike) -> float:
        w = np.asarray(weights, dtype=float)
        best = self._top(self.by_won, w)
        return self._top(self.by_score, w) / best if best > 0 else float("nan")


CALIBRATION_GROUPS = 4096  # a bootstrap's calibration line: at most this many score groups


def fit_calibration_line(
    score: np.ndarray, rows: np.ndarray, won: np.ndarray, max_steps: int = 100
) -> dict[str, float]:
    """`calibration_intercept_slope` of grouped rows: `rows[k]` rows (counted with their
    weights) at logit score `score[k]`, `won[k]` of them won. Newton's method on the two
    log likelihoods (the slope's with step halving); NaN with one class only or when the
    slope does not converge (scores that separate the classes)."""
    total, wins = rows.sum(), won.sum()
    if wins <= 0 or wins >= total:
        return {"calibration_intercept": float("nan"), "calibration_slope": float("nan")}
    intercept = 0.0
    for _ in range(max_steps):
        p = expit(intercept + score)
        step = (wins - (rows * p).sum()) / max((rows * p * (1 - p)).sum(), 1e-300)
        intercept += step
        if abs(step) < 1e-10:
            break
    line = np.array([0.0, 1.0])

    def loss(ab: np.ndarray) -> float:
        eta = ab[0] + ab[1] * score
        return float((rows * np.logaddexp(0.0, eta) - won * eta).sum())

    current = loss(line)
    for _ in range(max_steps):
        p = expit(line[0] + line[1] * score)
        residual, curvature = won - rows * p, rows * p * (1 - p)
        gradient = np.array([residual.sum(), (residual * score).sum()])
        hessian = np.array(
            [
                [curvature.sum(), (curvature * score).sum()],
                [(curvature * score).sum(), (curvature * score * score).sum()],
            ]
        )
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            return {"calibration_intercept": float(intercept), "calibration_slope": float("nan")}
        scale = 1.0
        while scale > 1e-8 and loss(line + scale * step) > current + 1e-12 * abs(current):
            scale /= 2
        line, current = line + scale * step, loss(line + scale * step)
        if np.abs(scale * step).max() < 1e-10:
            return {"calibration_intercept": float(intercept), "calibration_slope": float(line[1])}
    return {"calibration_intercept": float(intercept), "calibration_slope": float("nan")}


class WeightedCalibrationLine:
    """Calibration intercept and slope (`calibration_intercept_slope`) for any row weights,
    the rows grouped once by their logit score: exact while the rows hold at most `max_groups`
    distinct scores (each its own group), else `max_groups` quantile groups of logit p, each at
    its rows' mean (a bootstrap's interval then; the point estimate comes from `exact`)."""

    def __init__(
        self, y_true: ArrayLike, p: ArrayLike, max_groups: int | None = CALIBRATION_GROUPS
    ) -> None:
        score = logit(np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6))
        self.y = np.asarray(y_true, dtype=float)
        values, codes = np.unique(score, return_inverse=True)
        if max_groups is not None and len(values) > max_groups:
            edges = np.quantile(score, np.linspace(0.0, 1.0, max_groups + 1)[1:-1])
            codes = np.searchsorted(edges, score, side="right")
            counts = np.bincount(codes, minlength=max_groups)
            values = np.bincount(codes, weights=score, minlength=max_groups) / np.maximum(counts, 1)
        self.codes, self.score = codes, values

    @classmethod
    def exact(cls, y_true: ArrayLike, p: ArrayLike) -> dict[str, float]:
        """The intercept and slope of every row counted once, each distinct score its own
        group (the maximum likelihood `calibration_intercept_slope` estimates)."""
        line = cls(y_true, p, max_groups=None)
        return line.fit(np.ones(len(line.y)))

    def fit(self, weights: np.ndarray) -> dict[str, float]:
        """The intercept and slope of the rows, each counted `weights` times."""
        w = np.asarray(weights, dtype=float)
        n = len(self.score)
        rows = np.bincount(self.codes, weights=w, minlength=n)
        won = np.bincount(self.codes, weights=w * self.y, minlength=n)
        return fit_calibration_line(self.score, rows, won)
