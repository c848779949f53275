"""Backtest a config and variants of it on the same weeks (`closeprob backtest`'s loop: retrain
like deployment, score the following weeks' queues), then compare each variant with the config
as it is on the same queue rows, paired over deal draws. Nothing is logged. Choose remedies
here, never on the test slice (issue 25, round 7).

    .venv/bin/python bench/backtest_variants.py --config configs/crm_sales.yaml --weeks 8 \
        --retrain-every 4 --variant calendar:features.calendar=true

Prints per variant the pooled queue rows' log loss, ROC-AUC, calibration intercept and slope
[95 %, deal bootstrap], mean p_close against the won rate, and per week the won rate and mean
p_close; then each variant minus the config: ROC-AUC and log loss [95 %], paired.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score

import closeprob.pipeline.jobs.backtest as backtest
from closeprob.models.yardsticks import paired_differences, yardsticks_with_intervals
from closeprob.pipeline.config import Config, load_config
from closeprob.pipeline.dataset import load_job_data
from closeprob.pipeline.jobs.generate import ensure_data


def with_setting(config: Config, setting: str) -> Config:
    """`config` with `section.key=value` (value read as YAML) changed."""
    path, value = setting.split("=", 1)
    section, key = path.split(".")
    part = getattr(config, section).model_copy(update={key: yaml.safe_load(value)})
    return config.model_copy(update={section: part})


def queue_rows(config: Config, weeks: int, retrain_every: int) -> pd.DataFrame:
    dataset = load_job_data(config)
    queued: list[pd.DataFrame] = []
    real_week = backtest.evaluate_week

    def keep(*a: Any) -> Any:
        result = real_week(*a)
        queued.append(result.rows.assign(as_of=result.as_of))
        return result

    backtest.evaluate_week = keep  # type: ignore[assignment]
    try:
        backtest.run_backtest(dataset, config, weeks, retrain_every)
    finally:
        backtest.evaluate_week = real_week  # type: ignore[assignment]
    return pd.concat(queued, ignore_index=True)


def describe(name: str, rows: pd.DataFrame, seed: int) -> None:
    y, p, deals = rows["won"].to_numpy(float), rows["p_close"].to_numpy(float), rows["deal_id"]
    f = yardsticks_with_intervals(y, p, deals.to_numpy(), 200, seed)
    print(
        f"{name:<12} rows {len(rows):,} deals {deals.nunique():,}: log loss {f['log_loss']:.4f} "
        f"[{f['log_loss_lo']:.4f}, {f['log_loss_hi']:.4f}] ROC-AUC {roc_auc_score(y, p):.4f} "
        f"intercept {f['intercept']:+.3f} [{f['intercept_lo']:+.3f}, {f['intercept_hi']:+.3f}] "
        f"slope {f['slope']:.3f} [{f['slope_lo']:.3f}, {f['slope_hi']:.3f}] ECE(eq-mass) "
        f"{f['ece_equal_mass']:.4f}; won rate {y.mean():.3f}, mean p {p.mean():.3f}",
        flush=True,
    )
    weekly = rows.groupby("as_of").agg(won=("won", "mean"), p=("p_close", "mean"))
    print(
        "  by week (won / mean p): "
        + ", ".join(f"{d.date()} {r.won:.3f}/{r.p:.3f}" for d, r in weekly.iterrows())
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--retrain-every", type=int, default=4)
    parser.add_argument(
        "--variant", action="append", default=[], help="name:section.key=value[,section.key=value]"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    config = load_config(args.config)
    ensure_data(config)
    base = queue_rows(config, args.weeks, args.retrain_every)
    describe("config", base, config.seed)
    for variant in args.variant:
        name, settings = variant.split(":", 1)
        changed = config
        for setting in settings.split(","):
            changed = with_setting(changed, setting)
        rows = queue_rows(changed, args.weeks, args.retrain_every)
        describe(name, rows, config.seed)
        both = base.merge(rows, on=["deal_id", "as_of"], suffixes=("_base", ""))
        d = paired_differences(
            both["won"], both["p_close"], both["p_close_base"], both["deal_id"], 200, config.seed
        )
        print(
            f"  {name} - config on {len(both):,} shared rows: ROC-AUC {d['roc_auc_diff']:+.4f} "
            f"[{d['roc_auc_diff_lo']:+.4f}, {d['roc_auc_diff_hi']:+.4f}], log loss "
            f"{d['log_loss_diff']:+.4f} "
            f"[{d['log_loss_diff_lo']:+.4f}, {d['log_loss_diff_hi']:+.4f}]",
            flush=True,
        )


if __name__ == "__main__":
    main()
