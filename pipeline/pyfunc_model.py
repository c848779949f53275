"""The MLflow pyfunc of a closeprob model, logged as code (MLflow's "models from code"): MLflow
runs this file when a model is loaded with `mlflow.pyfunc.load_model`, e.g. where closeprob is
not installed (the model carries closeprob's code and requirements). closeprob itself never
runs it: it reads the model's files (`pipeline/model_artifact.py`).

Input: one row per (deal, as_of) with the model's feature columns; output: the calibrated
P(won within the horizon), one float per row (not labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class CloseProbabilityPyfunc(PythonModel):
    """The classifier rebuilt from the model's JSON and LightGBM text in `load_context`."""

    def load_context(self, context: Any) -> None:
        from closeprob.pipeline.model_artifact import ARTIFACT, read_model_files

        self.model = read_model_files(Path(context.artifacts[ARTIFACT])).close

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        return self.model.predict_proba(model_input)


set_model(CloseProbabilityPyfunc())
