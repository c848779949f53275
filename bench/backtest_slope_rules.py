"""Which Platt-slope rule should the deployed calibrator use? One backtest (`closeprob backtest`:
retrain like deployment, score the following weeks' queues), every rule scored on the same
folds: each retrain's deployed model keeps its booster and its out-of-fold raw scores, and
only the calibrator's (slope, intercept) changes per rule. Nothing is logged.

    .venv/bin/python bench/backtest_slope_rules.py --config configs/default.yaml --weeks 8 \
        --retrain-every 4

Rules (intercept always refitted on the recent window for the rule's slope, as deployed):
  current     pooled slope unless outside the recent window's 95 % interval, then recent
              (the deployed rule until round 6)
  pooled      the pooled slope always (deployed since round 6)
  shrink      precision-weighted: pooled + B·(recent − pooled), B = max(0, 1 − se²/d²)
              (the drift variance estimated by moments from the one difference d)
  dl          B = τ²/(τ² + se²), τ² by DerSimonian–Laird over date blocks of the out-of-fold
              rows as long as the recent window (how much the slope really moves over time)
  strict      as current at 99.9 % (|z| > 3.29)
  decay       Platt on every row weighted 0.5^(age / span of the recent window)
  recent_only slope and intercept from the recent window (`pool_slope: false`)

Prints per retrain the slopes each rule takes, then per rule the pooled queue rows' log loss,
calibration intercept and slope [95 %, deal bootstrap], equal-mass ECE and (built-in data) the
distance to the true probabilities.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

import closeprob.models.cross_fit as cross_fit
import closeprob.pipeline.jobs.backtest as backtest
import closeprob.pipeline.training as training
from closeprob.models.recent_calibration import (
    Z_95,
    intercept_for_slope,
    slope_interval,
)
from closeprob.models.training import fit_platt
from closeprob.models.yardsticks import yardsticks_with_intervals
from closeprob.pipeline.config import load_config
from closeprob.pipeline.dataset import load_job_data
from closeprob.pipeline.jobs.generate import ensure_data

Rows = dict[str, np.ndarray]  # raw, labels, recent, deal_ids, as_of of the out-of-fold rows
RULES = ("current", "pooled", "shrink", "dl", "strict", "decay", "recent_only")
DEPLOYED = "pooled"  # what models/recent_calibration.py does (until round 6: "current")


def _slope(raw: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    if weights is None:
        return float(fit_platt(raw, labels).coef_[0, 0])
    fitted = LogisticRegression(C=np.inf, max_iter=1000)
    fitted.fit(raw.reshape(-1, 1), labels, sample_weight=weights)
    return max(float(fitted.coef_[0, 0]), 0.0)


def _recent_se(rows: Rows) -> tuple[float, float]:
    r = rows["recent"]
    low, high = slope_interval(rows["raw"][r], rows["labels"][r], rows["deal_ids"][r])
    return (low + high) / 2.0, (high - low) / (2.0 * Z_95)


def dersimonian_laird_tau2(rows: Rows) -> float:
    """Between-block variance of the Platt slope over date blocks as long as the recent window."""
    dates = np.sort(np.unique(rows["as_of"]))
    width = len(np.unique(rows["as_of"][rows["recent"]]))
    slopes, variances = [], []
    for start in range(0, len(dates), width):
        block = np.isin(rows["as_of"], dates[start : start + width])
        labels = rows["labels"][block]
        if labels.min() == labels.max() or block.sum() < 50:
            continue
        low, high = slope_interval(rows["raw"][block], labels, rows["deal_ids"][block])
        slopes.append((low + high) / 2.0)
        variances.append(((high - low) / (2.0 * Z_95)) ** 2)
    if len(slopes) < 2:
        return 0.0
    theta, w = np.array(slopes), 1.0 / np.array(variances)
    mean = (w * theta).sum() / w.sum()
    q = float((w * (theta - mean) ** 2).sum())
    return max(0.0, (q - (len(theta) - 1)) / (w.sum() - (w**2).sum() / w.sum()))


def rule_slopes(rows: Rows) -> dict[str, float]:
    raw, labels, r = rows["raw"], rows["labels"], rows["recent"]
    pooled = _slope(raw, labels)
    recent = _slope(raw[r], labels[r])
    centre, se = _recent_se(rows)
    d = recent - pooled
    z = (centre - pooled) / se
    shrink = max(0.0, 1.0 - se**2 / d**2) if d != 0 else 0.0
    tau2 = dersimonian_laird_tau2(rows)
    age = (rows["as_of"].max() - rows["as_of"]) / np.timedelta64(1, "D")
    span = max((rows["as_of"][r].max() - rows["as_of"][r].min()) / np.timedelta64(1, "D"), 7.0)
    return {
        "current": pooled if abs(z) <= Z_95 else recent,
        "pooled": pooled,
        "shrink": pooled + shrink * d,
        "dl": pooled + tau2 / (tau2 + se**2) * d,
        "strict": pooled if abs(z) <= 3.290527 else recent,
        "decay": _slope(raw, labels, 0.5 ** (age / span)),
        "recent_only": recent,
        "_se": se,
        "_tau": float(np.sqrt(tau2)),
    }


def rule_maps(rows: Rows) -> dict[str, tuple[float, float]]:
    """(slope, intercept) per rule; recent_only is Platt's map on the recent rows alone."""
    raw, labels, r = rows["raw"], rows["labels"], rows["recent"]
    slopes = rule_slopes(rows)
    maps = {
        name: (slopes[name], intercept_for_slope(raw[r], labels[r], slopes[name]))
        for name in RULES
        if name != "recent_only"
    }
    platt = fit_platt(raw[r], labels[r])
    maps["recent_only"] = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
    print(
        f"  retrain: {len(raw):,} out-of-fold rows, recent {int(r.sum()):,} rows "
        f"({len(np.unique(rows['deal_ids'][r])):,} deals); recent se {slopes['_se']:.3f}, "
        f"DL tau {slopes['_tau']:.3f}; slopes "
        + ", ".join(f"{name} {maps[name][0]:.3f}" for name in RULES),
        flush=True,
    )
    return maps


def install_recorders(
    records: list[Rows], maps_by_model: dict[int, dict[str, tuple[float, float]]]
) -> None:
    """Record each deployed calibrator's rows; keep every rule's map per trained model."""
    real_fit = training.fit_cross_fitted_model
    real_calibrate = cross_fit.fit_recent_calibrator
    real_train = backtest.train_close_model
    real_week = backtest.evaluate_week
    as_of: list[np.ndarray] = []

    def fit_model(features: pd.DataFrame, labels: pd.Series, fit: pd.Series, *a: Any) -> Any:
        judged = a[13] if len(a) > 13 else None  # the rows that chose trees and weight
        scored, _ = cross_fit.map_rows(fit, a[0], judged, pooled=True)
        as_of.append(features.loc[scored, "as_of"].to_numpy())
        return real_fit(features, labels, fit, *a)

    def calibrate(raw: Any, labels: Any, recent: Any, deal_ids: Any, *a: Any) -> Any:
        records.append(
            {
                "raw": np.asarray(raw, dtype=float),
                "labels": np.asarray(labels, dtype=int),
                "recent": np.asarray(recent, dtype=bool),
                "deal_ids": np.asarray(deal_ids),
                "as_of": as_of[-1],
            }
        )
        return real_calibrate(raw, labels, recent, deal_ids, *a)

    def train(dataset: Any, config: Any) -> Any:
        result = real_train(dataset, config)
        maps = rule_maps(records[-1])  # the deployed model's calibrator is fitted last
        deployed = result.model.calibrator
        assert np.isclose(maps[DEPLOYED][0], deployed.slope), (maps[DEPLOYED], deployed)
        maps_by_model[id(result.model)] = maps
        comparison_report(result, maps)
        return result

    def week(dataset: Any, loaded: Any, as_of_: Any, config: Any) -> Any:
        result = real_week(dataset, loaded, as_of_, config)
        calibrator = loaded.close.calibrator
        p = np.clip(result.rows["p_close"].to_numpy(dtype=float), 1e-15, 1 - 1e-15)
        raw = (logit(p) - calibrator.intercept) / calibrator.slope
        for name, (slope, intercept) in maps_by_model[id(loaded.close)].items():
            result.rows[f"p_{name}"] = expit(intercept + slope * raw)
        return result

    training.fit_cross_fitted_model = fit_model  # type: ignore[assignment]
    cross_fit.fit_recent_calibrator = calibrate  # type: ignore[assignment]
    backtest.train_close_model = train  # type: ignore[assignment]
    backtest.evaluate_week = week  # type: ignore[assignment]


def comparison_report(result: Any, maps: dict[str, tuple[float, float]]) -> None:
    """Each rule's map on the deployed model's comparison rows (held-out deals of the recent
    window: the check `train` prints), log loss and ECE (10 bins)."""
    from closeprob.models.metrics import expected_calibration_error

    data = result.data
    rows = data.role("comparison")
    if not rows.any():
        return
    _, p_raw = result.model.predict_both(data.features[rows])
    raw = logit(np.clip(p_raw, 1e-15, 1 - 1e-15))
    y = data.labels[rows].to_numpy(dtype=float)
    deal_ids = data.features.loc[rows, "deal_id"].to_numpy()
    deals = len(np.unique(deal_ids))
    parts, p_by_rule = [], {}
    for name in RULES:
        slope, intercept = maps[name]
        p = np.clip(expit(intercept + slope * raw), 1e-15, 1 - 1e-15)
        p_by_rule[name] = p
        loss = float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())
        parts.append(f"{name} {loss:.4f}/{expected_calibration_error(y, p):.4f}")
    print(
        f"  comparison rows {int(rows.sum()):,} ({deals:,} deals, won rate {y.mean():.3f}), "
        "log loss/ECE: " + ", ".join(parts),
        flush=True,
    )
    frame = pd.DataFrame(
        {"won": y, "deal_id": deal_ids} | {f"p_{k}": v for k, v in p_by_rule.items()}
    )
    paired_log_loss(frame, deal_ids, 200, 0)


def report(queued: pd.DataFrame, seed: int, resamples: int) -> None:
    oracle = queued["oracle"].to_numpy(dtype=float)
    truth = None if np.isnan(oracle).any() else oracle
    y, deals = queued["won"].to_numpy(dtype=float), queued["deal_id"].to_numpy()
    print(f"pooled queue rows {len(queued):,}, deals {queued['deal_id'].nunique():,}")
    for name in RULES:
        f = yardsticks_with_intervals(y, queued[f"p_{name}"], deals, resamples, seed, truth)
        line = (
            f"{name:<12} log loss {f['log_loss']:.4f} [{f['log_loss_lo']:.4f}, "
            f"{f['log_loss_hi']:.4f}] intercept {f['intercept']:+.3f} [{f['intercept_lo']:+.3f}, "
            f"{f['intercept_hi']:+.3f}] slope {f['slope']:.3f} [{f['slope_lo']:.3f}, "
            f"{f['slope_hi']:.3f}] ECE(eq-mass) {f['ece_equal_mass']:.4f} "
            f"mean p {queued[f'p_{name}'].mean():.4f}"
        )
        if truth is not None:
            line += f" truth MAE {f['truth_mae']:.4f} RMSE {f['truth_rmse']:.4f}"
        print(line, flush=True)
    if truth is not None:
        print(f"{'truth':<12} log loss {f['truth_log_loss']:.4f}; won rate {y.mean():.4f}")
    paired_log_loss(queued, deals, resamples, seed)


def paired_log_loss(queued: pd.DataFrame, deals: np.ndarray, resamples: int, seed: int) -> None:
    """Each rule's log loss minus the current rule's, with a deal-bootstrap 95 % interval."""
    y = queued["won"].to_numpy(dtype=float)
    codes, uniques = pd.factorize(pd.Series(deals))
    rng = np.random.default_rng(seed)
    draws = [np.bincount(rng.integers(0, len(uniques), len(uniques)), minlength=len(uniques))]
    draws += [
        np.bincount(rng.integers(0, len(uniques), len(uniques)), minlength=len(uniques))
        for _ in range(resamples - 1)
    ]

    def loss(p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 1e-15, 1 - 1e-15)
        return -(y * np.log(p) + (1 - y) * np.log1p(-p))

    base = loss(queued["p_current"].to_numpy())
    for name in RULES[1:]:
        diff = loss(queued[f"p_{name}"].to_numpy()) - base
        by_deal, rows = np.bincount(codes, diff), np.bincount(codes)
        means = [float((w * by_deal).sum() / (w * rows).sum()) for w in draws[1:]]
        print(
            f"  {name:<12} - current: log loss {diff.mean():+.5f} "
            f"[{np.percentile(means, 2.5):+.5f}, {np.percentile(means, 97.5):+.5f}]"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    parser.add_argument("--weeks", type=int, default=8, help="0: one `train` on all the data")
    parser.add_argument("--retrain-every", type=int, default=4)
    parser.add_argument("--resamples", type=int, default=200)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    config = load_config(args.config)
    ensure_data(config)
    dataset = load_job_data(config)
    queued: list[pd.DataFrame] = []
    records: list[Rows] = []
    maps: dict[int, dict[str, tuple[float, float]]] = {}
    install_recorders(records, maps)
    if args.weeks == 0:  # the deployed model of `train` on all the data: comparison rows only
        backtest.train_close_model(dataset, config)
        return
    real_week: Callable[..., Any] = backtest.evaluate_week

    def keep(*a: Any) -> Any:
        result = real_week(*a)
        queued.append(result.rows)
        return result

    backtest.evaluate_week = keep  # type: ignore[assignment]
    backtest.run_backtest(dataset, config, args.weeks, args.retrain_every)
    report(pd.concat(queued, ignore_index=True), config.seed, args.resamples)


if __name__ == "__main__":
    main()
