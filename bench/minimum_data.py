"""How few deals can closeprob learn from? Random subsamples of the built-in CRM with N won and
N lost deals (and their interactions) are trained with the default config; prints one line
per subsample and a summary per size. Nothing is logged to MLflow.

    .venv/bin/python bench/minimum_data.py --sizes 40,100,200 --draws 5

A subsample is "refused" when `train` would exit 2 (too little data to split by time, a
constant model, or a test ROC-AUC whose 95 % interval reaches 0.5); otherwise its test
ROC-AUC and ECE are those `train` prints.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.models.promotion import untrusted_reason
from closeprob.pipeline.config import load_config
from closeprob.pipeline.core import Dataset, PolicyScores
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.errors import TrainingDataError
from closeprob.pipeline.evaluation import oracle_metrics, test_intervals
from closeprob.pipeline.jobs.generate import ensure_data
from closeprob.pipeline.training import train_close_model


def subsample(dataset: Dataset, n: int, seed: int) -> Dataset:
    """n won and n lost deals drawn at random, with the open deals in the same proportion."""
    rng = np.random.default_rng(seed)
    deals = dataset.deals
    share = 2 * n / int(deals["outcome"].notna().sum())
    picked = [deals.index[deals["outcome"] == outcome].to_numpy() for outcome in ("won", "lost")]
    chosen = [rng.choice(ids, n, replace=False) for ids in picked]
    still_open = deals.index[deals["outcome"].isna()].to_numpy()
    chosen.append(rng.choice(still_open, round(share * len(still_open)), replace=False))
    kept = deals.loc[np.sort(np.concatenate(chosen))].reset_index(drop=True)
    events = dataset.interactions[dataset.interactions["deal_id"].isin(kept["deal_id"])]
    return Dataset(kept, events.reset_index(drop=True), dataset.truth)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    parser.add_argument("--sizes", default="40,100,200")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    config = load_config(args.config)
    ensure_data(config)
    full = load_dataset(config.data)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        for draw in range(args.draws):
            data = subsample(full, n, seed=1000 * n + draw)
            row: dict[str, object] = {"won/lost": f"{n}/{n}", "draw": draw}
            try:
                result = train_close_model(data, config)
            except TrainingDataError as exc:
                rows.append(row | {"outcome": f"refused: {str(exc)[:70]}"})
                print(rows[-1], flush=True)
                continue
            p = result.test_p_close
            value = np.full(len(p), np.nan)
            m = result.metrics | oracle_metrics(result.data, data, config)
            m |= test_intervals(
                result.data, PolicyScores("model", p, p), value, 50, 200, config.seed
            )
            terms = int(min(m["evaluated_terms"], m["deployed_terms"]))
            reason = untrusted_reason(terms, m["test_roc_auc_lo"], m["test_roc_auc"])
            rows.append(
                row
                | {
                    "outcome": "refused: " + reason[:60] if reason else "registered",
                    "roc_auc": m["test_roc_auc"],
                    "roc_auc_lo": m["test_roc_auc_lo"],
                    "ece": m["test_ece"],
                    "oracle_roc_auc": m.get("test_oracle_roc_auc", np.nan),
                    "terms": terms,
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".3f"))
    registered = table[table["outcome"] == "registered"]
    summary = table.groupby("won/lost", sort=False).agg(draws=("draw", "size"))
    summary["registered"] = registered.groupby("won/lost").size()
    for column in ("roc_auc", "ece"):
        if column in registered:
            grouped = registered.groupby("won/lost")[column]
            summary[f"{column} median"] = grouped.median()
            summary[f"{column} range"] = grouped.agg(lambda s: f"{s.min():.3f}–{s.max():.3f}")
    print()
    print(summary.fillna({"registered": 0}).to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
