"""Deal values on later deals, per data set with amounts: is the value model's mean estimate
the mean declared amount (p × value needs a mean, not a median), and is a deal's latest quote
before as_of a better value than the estimate where both exist? Nothing is logged.

    .venv/bin/python bench/value_sources.py --datasets default,bpi2012,crm_sales

The value model is the evaluated one `train` fits (deals created before the validation slice,
kept over the segment median by squared error on deals created until the test slice); "later
deals" are deals created in the test slice's period with a declared amount. Quotes are
measured on the test slice's snapshot rows of deals with a declared amount and a quote.
"""

from __future__ import annotations

import argparse
import pickle
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from closeprob.models.quotes import latest_quotes
from closeprob.pipeline.config import load_config
from closeprob.pipeline.dataset import load_job_data
from closeprob.pipeline.jobs.generate import ensure_data
from closeprob.pipeline.training import fit_deal_value_model, prepare_training_data


def run(name: str, cache: Path) -> None:
    config = load_config(Path("configs") / f"{name}.yaml")
    ensure_data(config)
    dataset = load_job_data(config)
    cached = cache / f"{name}.data.pkl"  # bench/calibration_causes.py's cache, if there
    data = (
        pickle.loads(cached.read_bytes())
        if cached.exists()
        else prepare_training_data(dataset, config)
    )
    model = fit_deal_value_model(dataset.deals, data, config)
    deals = dataset.deals
    later = deals[(deals["created_at"] >= data.split.test[0]) & deals["amount"].notna()]
    truth = later["amount"].to_numpy(dtype=float)
    estimate, how = model.estimate(later)
    median_only, _ = replace(model, smearing=1.0).estimate(later)
    print(
        f"{name}: {len(later)} later deals with an amount, estimator {how}, smearing "
        f"{model.smearing:.3f}; mean declared {truth.mean():,.0f}, mean estimate "
        f"{estimate.mean():,.0f} ({estimate.mean() / truth.mean() - 1:+.1%}; without smearing "
        f"{median_only.mean() / truth.mean() - 1:+.1%})",
        flush=True,
    )
    test = data.rows("test")
    rows = data.features.loc[test, ["deal_id", "as_of"]]
    quotes = latest_quotes(dataset.interactions, rows, data.spec.stage_event_type)
    amounts = deals.set_index("deal_id")["amount"].reindex(rows["deal_id"]).to_numpy(dtype=float)
    by_row = deals.set_index("deal_id").loc[rows["deal_id"].to_numpy()].reset_index()
    row_estimate = model.estimate(by_row)[0]
    both = ~np.isnan(quotes) & ~np.isnan(amounts)
    missing = np.isnan(amounts)
    quoted_share = np.mean(~np.isnan(quotes[missing])) if missing.any() else float("nan")
    print(
        f"  test rows {len(rows)}: with a quote {np.mean(~np.isnan(quotes)):.1%}; rows without a "
        f"declared amount {missing.mean():.1%}, of which quoted {quoted_share:.1%}",
        flush=True,
    )
    if both.any():
        print(
            f"  rows with an amount and a quote ({int(both.sum())}): MAE quote "
            f"{np.abs(quotes[both] - amounts[both]).mean():,.0f}, MAE estimate "
            f"{np.abs(row_estimate[both] - amounts[both]).mean():,.0f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="default,bpi2012,crm_sales")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/calibration_causes"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name in args.datasets.split(","):
        run(name, args.cache)


if __name__ == "__main__":
    main()
