"""Platt's map from out-of-fold raw scores: the intercept from the recent window (it tracks the
present base rate), the slope from every labelled row.

Why: a recent window is a few thousand rows of a few hundred deals, so its own slope is noisy.
On the built-in data the generator's true probabilities themselves score a calibration slope of
0.81 [0.71, 0.97] on the calibration slice and 1.15 [1.00, 1.33] on the test slice: a map fitted
on the calibration slice alone learns that slice's luck (docs/model-quality.md). The slope of
every earlier labelled row is steadier.

Until round 6 the recent slope replaced the pooled one when the recent window's own 95 %
interval excluded it. Measured in backtests that retrain like deployment and score the weeks
that follow (`bench/backtest_slope_rules.py`, five data sets, 21 retrains), that switch fired
only on Olist and bank marketing (and once on the built-in data's full training): its log loss
tied the pooled slope's everywhere, the pooled slope's calibration intercept and slope held 0
and 1 on Olist where the switch's did not, and on the built-in model's held-out comparison deals
the switch cost 0.013 of log loss [−0.001, +0.030]. A tie goes to the simpler rule: the
pooled slope always. The recent slope and its interval are still computed and logged
(`SlopeChoice.recent_differs`).

Arrays in, a `RawScoreCalibrator` and what it rests on out; no config, no disk, no MLflow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from closeprob.models.classifier import RawScoreCalibrator, SlopeChoice
from closeprob.models.training import fit_calibrator, fit_platt

Z_95 = 1.959964  # the standard normal's 97.5 % point

__all__ = ["SlopeChoice", "choose_slope", "fit_recent_calibrator", "intercept_for_slope"]


def choose_slope(
    raw: np.ndarray, labels: np.ndarray, recent: np.ndarray, deal_ids: np.ndarray
) -> SlopeChoice:
    """The pooled Platt slope (slope >= 0, `fit_platt`), used; beside it the recent rows' own
    slope and its 95 % interval (clustered by deal), a drift signal that is logged only."""
    pooled = _slope(raw, labels)
    recent_slope = _slope(raw[recent], labels[recent])
    low, high = slope_interval(raw[recent], labels[recent], deal_ids[recent])
    return SlopeChoice(pooled, recent_slope, low, high, used=pooled, rows=len(raw))


def intercept_for_slope(raw: np.ndarray, labels: np.ndarray, slope: float) -> float:
    """The intercept a with mean(expit(a + slope·raw)) = the rows' won rate: the maximum-
    likelihood intercept for a fixed slope."""
    offset = slope * np.asarray(raw, dtype=float)
    y = np.asarray(labels, dtype=float)
    rate = float(y.mean())
    if rate in (0.0, 1.0):
        raise ValueError(f"the recent rows have only label {int(rate)}; both are needed")
    return float(brentq(lambda a: float(np.sum(y - expit(a + offset))), -50.0, 50.0))


def fit_recent_calibrator(
    raw: np.ndarray,
    labels: np.ndarray,
    recent: np.ndarray,
    deal_ids: np.ndarray,
    method: str,
    pool_slope: bool = True,
) -> tuple[RawScoreCalibrator, SlopeChoice | None]:
    """The calibrator of out-of-fold raw scores (`raw`, one per labelled row; `recent` marks
    the recent window). Sigmoid with `pool_slope`: the pooled slope of `choose_slope`, the
    intercept fitted on the recent rows for it. Otherwise (isotonic, or `pool_slope` off) the map is
    fitted on the recent rows alone, as `fit_calibrator` does."""
    raw, labels = np.asarray(raw, dtype=float), np.asarray(labels, dtype=int)
    recent = np.asarray(recent, dtype=bool)
    if method != "sigmoid" or not pool_slope:
        return fit_calibrator(raw[recent], labels[recent], method), None
    choice = choose_slope(raw, labels, recent, np.asarray(deal_ids))
    intercept = intercept_for_slope(raw[recent], labels[recent], choice.used)
    return RawScoreCalibrator(method, slope=choice.used, intercept=intercept), choice


def _slope(raw: np.ndarray, labels: np.ndarray) -> float:
    return float(fit_platt(raw, labels).coef_[0, 0])


def slope_interval(
    raw: np.ndarray, labels: np.ndarray, deal_ids: np.ndarray
) -> tuple[float, float]:
    """95 % interval of the unconstrained Platt slope, ± 1.96 standard errors clustered by deal
    (Liang and Zeger's sandwich: a deal's rows at several dates are not independent), with
    the small-sample factor G / (G − 1) for G deals."""
    fitted = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)
    fitted.fit(raw.reshape(-1, 1), labels)
    slope = float(fitted.coef_[0, 0])
    p = expit(fitted.intercept_[0] + slope * raw)
    design = np.column_stack([np.ones(len(raw)), raw])
    bread = (design * (p * (1.0 - p))[:, None]).T @ design
    codes, uniques = pd.factorize(pd.Series(deal_ids))
    residual = labels - p
    by_deal = [np.bincount(codes, residual * design[:, j], len(uniques)) for j in (0, 1)]
    scores = np.column_stack(by_deal)
    groups = len(uniques)
    meat = scores.T @ scores * (groups / max(groups - 1, 1))
    inverse = np.linalg.pinv(bread)
    error = float(np.sqrt(max((inverse @ meat @ inverse)[1, 1], 0.0)))
    return slope - Z_95 * error, slope + Z_95 * error


def calibration_record(
    calibrator: RawScoreCalibrator, choice: SlopeChoice | None, role: str
) -> tuple[dict[str, str], dict[str, float]]:
    """What a training run logs of one model's calibration (`role`: 'evaluated' or
    'deployed'): the param `<role>.calibration_slope_source` ('pooled' as `choose_slope`
    decides; 'recent_only' for a sigmoid fitted on the recent rows alone, with `pool_slope`
    off; 'isotonic') and the metrics `<role>_calibration_slope` and `_intercept` of the map,
    with both slopes, the recent rows' 95 % interval and `_slope_recent_differs` (1 when that
    interval excludes the pooled slope) and `_slope_rows` (the rows the pooled slope rests on)
    when chosen."""
    if choice is not None:
        source = choice.source
    else:
        source = "recent_only" if calibrator.method == "sigmoid" else "isotonic"
    metrics: dict[str, float] = {}
    if calibrator.method == "sigmoid":
        metrics[f"{role}_calibration_slope"] = float(calibrator.slope)
        metrics[f"{role}_calibration_intercept"] = float(calibrator.intercept)
    if choice is not None:
        metrics |= {
            f"{role}_calibration_slope_pooled": choice.pooled,
            f"{role}_calibration_slope_recent": choice.recent,
            f"{role}_calibration_slope_recent_lo": choice.recent_lo,
            f"{role}_calibration_slope_recent_hi": choice.recent_hi,
            f"{role}_calibration_slope_recent_differs": float(choice.recent_differs),
            f"{role}_calibration_slope_rows": float(choice.rows),
        }
    return {f"{role}.calibration_slope_source": source}, metrics
