"""Are the probabilities we multiply by money right? The backtest's calibration of the weekly
queue (mean over weeks of ECE, log loss, calibration intercept and slope) for the deployed
model, against closeprob 0.1's registered model (fitted on the train slice only) and other
calibration windows. Prints one line per candidate; nothing is logged to MLflow.

    .venv/bin/python bench/backtest_calibration.py --config configs/default.yaml --weeks 4
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import closeprob.pipeline.jobs.backtest as backtest
from closeprob.pipeline.config import Config, load_config
from closeprob.pipeline.core import TrainingResult
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.jobs.generate import ensure_data
from closeprob.pipeline.training import train_close_model


def _evaluated_instead(dataset: object, config: object) -> TrainingResult:
    result = train_close_model(dataset, config)  # type: ignore[arg-type]
    return replace(result, model=result.evaluated)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--windows", default="0.15,0.3")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    config = load_config(args.config)
    ensure_data(config)
    dataset = load_dataset(config.data)
    candidates: dict[str, tuple[Config, Callable[..., TrainingResult]]] = {
        "0.1: train slice only": (config, _evaluated_instead)
    }
    for share in (float(s) for s in args.windows.split(",")):
        calibration = config.calibration.model_copy(update={"window_share": share})
        candidates[f"deployed, window_share {share}"] = (
            config.model_copy(update={"calibration": calibration}),
            train_close_model,
        )
    columns = ["ece", "log_loss", "calibration_intercept", "calibration_slope"]
    print(f"{'candidate':<32}" + "".join(f"{c:>22}" for c in [*columns, "captured_p_x_value"]))
    for name, (candidate_config, trainer) in candidates.items():
        backtest.train_close_model = trainer
        weeks = backtest.run_backtest(dataset, candidate_config, args.weeks, 1).weeks
        means = weeks[[*columns, "captured_p_x_value"]].mean()
        print(f"{name:<32}" + "".join(f"{v:>22.3f}" for v in means), flush=True)


if __name__ == "__main__":
    main()
