"""Where the evaluated model's test-slice miscalibration sits (issue 25, round 7): the test rows
grouped by test week, by deal age, by stage, and by whether a feature's value lies outside the
range of the rows the model was fitted on; per group the rows, the won rate against the mean
p_close, and the calibration intercept and slope (`y ~ a + b·logit p`). Nothing is logged.

    .venv/bin/python bench/drift_diagnosis.py --datasets crm_sales,bank_marketing --cache /tmp/cc

Uses bench/calibration_pooled_slope.py's cache (training tables and selection pickles).
"""

from __future__ import annotations

import argparse
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.linear_model import LogisticRegression

from closeprob.pipeline.config import load_config
from closeprob.pipeline.training import fit_selected

RANGE_FEATURES = [
    "deal_age_days",
    "days_since_last_touch",
    "days_in_stage",
    "touches_total",
    "touches_per_30d",
    "owner_win_rate",
    "owner_open_deals",
    "market_touches_30d",
    "stage_win_rate",
]


def calibration_of(y: np.ndarray, p: np.ndarray) -> str:
    """Rows, won rate vs mean p, and the intercept and slope of y on logit p."""
    gap = y.mean() - p.mean()
    text = f"{len(y):6d} rows  won {y.mean():.3f}  mean p {p.mean():.3f}  gap {gap:+.3f}"
    if len(y) < 100 or y.min() == y.max():
        return text
    x = logit(np.clip(p, 1e-6, 1 - 1e-6)).reshape(-1, 1)
    fitted = LogisticRegression(C=np.inf, max_iter=1000).fit(x, y)
    return text + f"  intercept {fitted.intercept_[0]:+.2f} slope {fitted.coef_[0, 0]:.2f}"


def show(title: str, groups: pd.Series, y: np.ndarray, p: np.ndarray) -> None:
    print(f"  by {title}:")
    for key in sorted(groups.dropna().unique()):
        mask = (groups == key).to_numpy()
        print(f"    {key!s:<28} {calibration_of(y[mask], p[mask])}")


def run(name: str, cache: Path) -> None:
    config = load_config(Path("configs") / f"{name}.yaml")
    data = pickle.loads((cache / f"{name}.data.pkl").read_bytes())
    selection = pickle.loads((cache / f"{name}.sel.pkl").read_bytes())
    model = fit_selected(data, config, selection)
    fit = data.rows("train") | data.rows("validation") | data.rows("calibration")
    test = data.rows("test")
    rows = data.features[test]
    y, p = data.labels[test].to_numpy(), model.predict_proba(rows)
    print(f"{name}: test {calibration_of(y, p)}")
    for slice_name in ("train", "validation", "calibration"):
        mask = data.rows(slice_name)
        print(f"  {slice_name:<12} won {data.labels[mask].mean():.3f} ({int(mask.sum())} rows)")
    show(
        "test week",
        rows["as_of"].dt.strftime("%Y-%m-%d" if name != "bank_marketing" else "%Y-%m"),
        y,
        p,
    )
    age_edges = np.quantile(data.features.loc[fit, "deal_age_days"], [0, 0.5, 0.9, 1.0])
    edges = np.unique([-np.inf, *age_edges[1:-1], age_edges[-1], np.inf])
    ages = pd.cut(rows["deal_age_days"], edges)
    show(f"deal age (fit rows' median, 90 %, max: {age_edges[1:]})", ages.astype(str), y, p)
    for column in ("current_stage", "attr_poutcome", "attr_contact", "attr_previous"):
        if column in rows:
            show(column, rows[column].astype(str), y, p)
    outside = pd.Series(False, index=rows.index)
    for column in [c for c in RANGE_FEATURES if c in rows]:
        low, high = data.features.loc[fit, column].min(), data.features.loc[fit, column].max()
        beyond = (rows[column] < low) | (rows[column] > high)
        outside |= beyond
        if beyond.any():
            print(
                f"  {column}: {beyond.mean():.1%} of test rows outside the fit range "
                f"[{low:g}, {high:g}]: "
                f"{calibration_of(y[beyond.to_numpy()], p[beyond.to_numpy()])}"
            )
    show("any of those outside the fit range", outside, y, p)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="crm_sales,bank_marketing")
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name in args.datasets.split(","):
        run(name, args.cache)


if __name__ == "__main__":
    main()
