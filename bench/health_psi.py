"""PSI on real data: how large it is by chance at each batch size, how far the training's own
snapshot dates lie from the pooled training rows, and what each drift rule says about the
batch of deals open at the end of the data (which the model would score next). The figures
behind health.psi_warn and the drift rule (docs/model-health.md). Nothing is trained or logged:
the reference is built from the feature rows a deployed model would be fitted on.

    .venv/bin/python bench/health_psi.py configs/default.yaml [configs/bpi2012.yaml ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.features.build import build_features
from closeprob.features.registry import categorical_features, feature_descriptions
from closeprob.features.snapshots import data_end, open_deal_snapshots
from closeprob.models.health import (
    batch_shares,
    build_reference,
    feature_psi_table,
    occupied_bins,
    psi,
    psi_noise_floor,
)
from closeprob.pipeline.config import load_config, named_columns
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.jobs.generate import ensure_data
from closeprob.pipeline.training import prepare_training_data

SIZES = (50, 100, 200, 400, 1000, 4000)
DRAWS = 40
PSI_WARN, ALPHA = 0.25, 0.001


def chance_psi(reference: dict, fitted: pd.DataFrame, n: int, rng: np.random.Generator) -> dict:
    """PSI of random batches of `n` training rows (the same distribution): per draw the mean
    over features and the largest, against the χ² prediction (k − 1)(1/n + 1/m)."""
    features = {k: v for k, v in reference["features"].items() if v["kind"] != "level"}
    m = int(reference["rows"])
    means, maxima, predicted = [], [], []
    for _ in range(DRAWS):
        batch = fitted.iloc[rng.choice(len(fitted), size=n, replace=False)]
        values = []
        for name, ref in features.items():
            shares = batch_shares(batch[name], ref)
            values.append(psi(ref["shares"], shares))
            predicted.append((occupied_bins(ref, shares) - 1) * (1 / n + 1 / m))
        means.append(np.mean(values))
        maxima.append(np.max(values))
    floor = np.median(
        [
            psi_noise_floor(occupied_bins(r, np.asarray(r["shares"])), n, m, ALPHA)
            for r in features.values()
        ]
    )
    return {
        "n": n,
        "mean_psi": np.mean(means),
        "predicted_mean": np.mean(predicted),
        "max_feature_psi_p95": np.quantile(maxima, 0.95),
        "chance_floor_median": floor,
    }


def end_batch_rules(reference: dict, table: pd.DataFrame) -> dict:
    """Features the batch at the data's end would flag under three rules."""
    measured = table.dropna(subset=["psi"])
    return {
        "features": len(measured),
        "psi>0.25": int((measured["psi"] > PSI_WARN).sum()),
        "psi>max(0.25,chance)": int(
            (measured["psi"] > measured[["chance_psi"]].max(axis=1).clip(lower=PSI_WARN)).sum()
        ),
        "closeprob rule": int(measured["drifted"].sum()),
        "unstable in training": int(measured["unstable"].sum()),
        "max psi (stable)": float(measured.loc[~measured["unstable"].astype(bool), "psi"].max()),
    }


def main(paths: list[str]) -> None:
    pd.set_option("display.width", 200)
    for path in paths:
        config = load_config(Path(path))
        ensure_data(config)
        dataset = load_dataset(config.data, named_columns(config))
        data = prepare_training_data(dataset, config)
        fitted = data.features[data.role("fit")]
        names = list(feature_descriptions(data.spec))
        reference = build_reference(
            fitted,
            names,
            categorical_features(data.spec),
            np.zeros(len(fitted)),
            dataset.interactions["type"],
            "",
            config.snapshots.horizon_days,
        )
        dates = fitted["as_of"].nunique()
        per_date = fitted.groupby("as_of").size()
        print(
            f"\n## {config.name}: {len(fitted):,} fit rows over {dates} snapshot dates "
            f"({per_date.median():.0f} rows per date, median)"
        )
        rng = np.random.default_rng(0)
        sizes = [n for n in SIZES if n < len(fitted)]
        print(
            pd.DataFrame([chance_psi(reference, fitted, n, rng) for n in sizes])
            .round(4)
            .to_string(index=False)
        )
        spreads = pd.DataFrame(
            [
                (k, v["date_psi_median"], v["spread"])
                for k, v in reference["features"].items()
                if v["kind"] != "level"
            ],
            columns=["feature", "date_psi_median", "spread_q95"],
        )
        print(
            "training dates against the pooled rows, over features: "
            + ", ".join(
                f"{c} median {spreads[c].median():.3f} / max {spreads[c].max():.3f}"
                for c in ("date_psi_median", "spread_q95")
            )
        )
        end = data_end(dataset.deals, dataset.interactions) + pd.Timedelta(seconds=1)
        snapshots = open_deal_snapshots(dataset.deals, pd.DatetimeIndex([end]))
        if snapshots.empty:
            print("no deal open at the end of the data")
            continue
        batch = build_features(dataset.deals, dataset.interactions, snapshots, data.spec)
        table = feature_psi_table(reference, batch, PSI_WARN, ALPHA)
        rules = end_batch_rules(reference, table)
        print(f"batch at the data's end ({len(batch):,} open deals): {rules}")
        flagged = table.loc[table["drifted"], ["feature", "psi", "threshold", "training_spread"]]
        if len(flagged):
            print(flagged.round(3).to_string(index=False))


if __name__ == "__main__":
    main(sys.argv[1:] or ["configs/default.yaml"])
