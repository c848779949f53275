"""`closeprob monitor` on the built-in data, end to end through the CLI, with no leak: a model
trained on the data as they stood at CUTOFF (`known_at`), then `predict` at weekly scoring dates
after it (the full data; features see only the past of each date), then `monitor`, which scores
the queues whose horizon has passed against what happened. Prints the commands' own output.

    .venv/bin/python bench/health_monitor.py [--weeks 8] [--cutoff 2024-06-01]

Tracks into bench/.work/health/mlflow.db (never the checkout's mlflow.db); needs data/ (`make
generate`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from closeprob.pipeline.config import load_config
from closeprob.pipeline.dataset import known_at, load_dataset

WORK = Path("bench/.work/health")
NAME = "health-demo"


def write_known_at(cutoff: pd.Timestamp, folder: Path) -> tuple[Path, Path]:
    """The built-in data as they stood at `cutoff`, as CSV files in `folder`."""
    dataset = known_at(load_dataset(load_config(Path("configs/default.yaml")).data), cutoff)
    folder.mkdir(parents=True, exist_ok=True)
    deals, interactions = folder / "deals.csv", folder / "interactions.csv"
    dataset.deals.to_csv(deals, index=False)
    dataset.interactions.to_csv(interactions, index=False)
    return deals, interactions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--cutoff", default="2024-06-01")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{(WORK / 'mlflow.db').resolve()}"
    from closeprob.pipeline.cli import main as closeprob

    cutoff = pd.Timestamp(args.cutoff, tz="UTC")
    deals, interactions = write_known_at(cutoff, WORK / "known_at")
    data = ["--deals", str(deals), "--interactions", str(interactions), "--name", NAME]
    print(f"$ closeprob train {' '.join(data)}", flush=True)
    assert closeprob(["-q", "train", *data]) == 0
    model = ["--model", f"models:/{NAME}@champion", "--name", NAME]
    for week in range(args.weeks):
        as_of = (cutoff + pd.Timedelta(weeks=week)).date().isoformat()
        out = WORK / "queue.csv"
        print(f"$ closeprob predict --as-of {as_of} {' '.join(model)}", flush=True)
        assert closeprob(["-q", "predict", "--as-of", as_of, *model, "--out", str(out)]) == 0
    print(f"$ closeprob monitor --name {NAME}", flush=True)
    assert closeprob(["monitor", "--name", NAME]) == 0


if __name__ == "__main__":
    main()
