"""The MLflow pyfunc wrapper: `predict` returns calibrated close probabilities, not labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.classifier import CloseModel


class CloseProbabilityModel(PythonModel):
    """Wraps a CloseModel. Input: one row per (deal, as_of) with the model's feature columns;
    output: P(won within the horizon), calibrated, one float per row."""

    def __init__(self, model: CloseModel) -> None:
        self.model = model

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        return self.model.predict_proba(model_input)
