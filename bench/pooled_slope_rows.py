"""How many rows, and which slope, the pooled Platt slope rests on under three rules for the rows
that judged the rolling-origin selection (issue 25, round 7): every fit row (round 6), no row on
a date a fold validated on, and no row of a judging deal (even hash bucket) on those dates (what
`train` does from round 7). Out-of-fold raw scores of the evaluated and the deployed model's fit
rows, from bench/calibration_pooled_slope.py's cache (round 6's selection pickles: every row
of a validation date judged then). Nothing is logged.

    .venv/bin/python bench/pooled_slope_rows.py default,crm_sales evaluated,deployed --cache /tmp/cc
"""

from __future__ import annotations

import argparse
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.features.registry import categorical_features, feature_descriptions
from closeprob.models.cross_fit import out_of_fold_raw
from closeprob.models.recent_calibration import slope_interval
from closeprob.models.selection import judging_deals
from closeprob.models.training import fit_platt
from closeprob.pipeline.config import load_config
from closeprob.pipeline.training import fit_params


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("datasets")
    parser.add_argument("roles", help="evaluated,deployed")
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name in args.datasets.split(","):
        data = pickle.loads((args.cache / f"{name}.data.pkl").read_bytes())
        selection = pickle.loads((args.cache / f"{name}.sel.pkl").read_bytes())
        config = load_config(Path("configs") / f"{name}.yaml")
        on_dates = data.features["as_of"].isin(selection.judged_dates)
        for role in args.roles.split(","):
            if role == "evaluated":
                fit = data.rows("train") | data.rows("validation") | data.rows("calibration")
                recent = data.rows("calibration")
            else:
                fit, recent = data.role("fit"), data.role("calibration")
            raw = out_of_fold_raw(
                data.features,
                data.labels,
                fit,
                fit,
                list(feature_descriptions(data.spec)),
                categorical_features(data.spec),
                fit_params(data, config),
                selection.trees,
                config.seed,
                selection.blend_weight,
                config.calibration.folds,
                config.model.logistic_rows,
                config.model.booster_rows,
            )
            y = data.labels[fit].to_numpy()
            deals = data.features.loc[fit, "deal_id"]
            off_dates = ~on_dates[fit].to_numpy() | recent[fit].to_numpy()
            judges = judging_deals(deals).to_numpy()
            rules = {
                "every fit row": np.ones(len(y), dtype=bool),
                "no row on a judged date": off_dates,
                "no judging deal's row there": off_dates | ~judges,
            }
            for label, keep in rules.items():
                low, high = slope_interval(raw[keep], y[keep], deals.to_numpy()[keep])
                slope = float(fit_platt(raw[keep], y[keep]).coef_[0, 0])
                print(
                    f"{name} {role}: {label:<28} rows {int(keep.sum()):7,} deals "
                    f"{pd.unique(deals[keep]).size:6,} slope {slope:.3f} "
                    f"[{low:.3f}, {high:.3f}] (se {(high - low) / 3.92:.3f})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
