"""A tiny native closeprob model (a 10-tree booster on 300 hand-made rows), logged and
registered into the test's store as many times as a registry test needs versions."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd

from closeprob.features.spec import FeatureSpec
from closeprob.models.classifier import CloseModel
from closeprob.models.training import calibrate_booster, fit_fixed_trees
from closeprob.models.value import DealValueModel
from closeprob.pipeline.registry import LoggedModel, log_model, register_logged

MODEL = "close-probability"


def tiny_model() -> tuple[CloseModel, DealValueModel, pd.DataFrame]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(
        {
            "a": rng.normal(size=300),
            "kind": pd.Categorical(rng.choice(["x", "y"], size=300), categories=["x", "y"]),
        }
    )
    y = pd.Series((rng.random(300) < 1 / (1 + np.exp(-2 * x["a"]))).astype(int))
    params = {"num_leaves": 3, "min_child_samples": 20, "num_threads": 1}
    booster = fit_fixed_trees(x[:200], y[:200], params, 10, seed=1)
    model = calibrate_booster(
        booster, x[200:], y[200:], "sigmoid", FeatureSpec(()), {"kind": ["x", "y"]}
    )
    value = DealValueModel([], {}, None, None, {}, 1000.0)
    return model, value, x.astype({"kind": object})


def log_tiny_model(parts: dict[str, object] | None = None) -> LoggedModel:
    """The tiny model logged into a run of the current store."""
    model, value, rows = tiny_model()
    mlflow.set_experiment(MODEL)
    with mlflow.start_run():
        return log_model(model, value, rows.head(5), parts)


def register_versions(count: int, name: str = MODEL) -> LoggedModel:
    """`count` versions of `name`, all the tiny model; the logged model."""
    logged = log_tiny_model()
    for _ in range(count):
        register_logged(logged, name)
    return logged
