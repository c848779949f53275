"""Value captured with and without account lifetime value, per data set. Prints a table.

    .venv/bin/python bench/clv_value.py default crm_sales

For each data set (configs/<name>.yaml; imported or generated into data/ when missing) the
close model is trained as `closeprob train` does (nothing is logged), and its test-slice
queues (one per as_of, `evaluation.capacity` deals) are ranked two ways: by p_close x deal
value (value.source: deal) and by p_close x (deal value + the account's CLV at as_of;
value.source: clv). Each is scored on two truths: the won deal's value, and that plus the
account's other wins within value.clv_horizon_days. `--account COLUMN` uses a deal column as
the account (crm_sales keeps its account out of account_id: it is filled in at the close, so
its presence leaks the outcome; the close model is trained without it, and the figures are
given on the test rows with an account).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.models.account_value import account_values_for_rows
from closeprob.pipeline.account_values import value_source_metrics
from closeprob.pipeline.config import load_config, named_columns
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.evaluation import row_values
from closeprob.pipeline.jobs.generate import ensure_data
from closeprob.pipeline.training import train_close_model

ROOT = Path(__file__).resolve().parents[1]


def measure(name: str, account: str | None) -> dict[str, object]:
    config = load_config(ROOT / "configs" / f"{name}.yaml")
    ensure_data(config)
    dataset = load_dataset(config.data, named_columns(config))
    deals = dataset.deals
    if account is not None:
        # The loader keeps the contract's and the config's columns: read the account back,
        # for the account values only (the close model is trained without it, as configured).
        accounts = pd.read_parquet(config.data.deals, columns=["deal_id", account])
        by_deal = accounts.set_index("deal_id")[account]
        deals = deals.assign(account_id=deals["deal_id"].map(by_deal))
    started = time.perf_counter()
    result = train_close_model(dataset, config)
    data = result.data
    test = data.rows("test").to_numpy()
    rows = data.features.loc[test, ["deal_id", "as_of"]]
    labels = data.labels[test].to_numpy()
    p_close = result.test_p_close
    value = row_values(dataset.deals, data.features["deal_id"], result.evaluated_value_model)[test]
    if account is not None:  # only rows whose deal has an account (see the docstring)
        known = rows["deal_id"].map(deals.set_index("deal_id")["account_id"]).notna()
        keep = known.to_numpy()
        rows, labels, p_close, value = rows[keep], labels[keep], p_close[keep], value[keep]
    capacity = config.evaluation.capacity
    metrics = value_source_metrics(deals, rows, labels, p_close, value, config.value, capacity)
    clv = account_values_for_rows(
        deals,
        rows,
        config.value.clv_horizon_days,
        config.value.clv_annual_discount_rate,
        config.value.clv_min_accounts,
    )["account_clv"]
    return {
        "data set": name + (f" (account = {account}, rows with one)" if account else ""),
        "test rows": len(rows),
        "queues": rows["as_of"].nunique(),
        "rows with CLV": f"{np.isfinite(clv).mean():.1%}",
        **{k.removeprefix("test_value_captured_at_capacity_"): v for k, v in metrics.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+")
    parser.add_argument("--account", default=None, help="deal column to use as account_id")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    table = pd.DataFrame([measure(name, args.account) for name in args.names])
    print(
        table.drop(columns="test_clv_row_share", errors="ignore").to_markdown(
            index=False, floatfmt=".4f"
        )
    )


if __name__ == "__main__":
    main()
