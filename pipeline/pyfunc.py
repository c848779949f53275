"""The MLflow pyfunc wrapper: `predict` returns calibrated close probabilities, not labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.classifier import CloseModel
from models.value import DealValueModel


class CloseProbabilityModel(PythonModel):
    """Wraps a CloseModel. Input: one row per (deal, as_of) with the model's feature columns;
    output: P(won within the horizon), calibrated, one float per row.

    The deal-value estimator trained in the same run travels with it (`value_model`), so a
    batch job that loads one registry version gets both.
    """

    def __init__(self, model: CloseModel, value_model: DealValueModel | None = None) -> None:
        self.model = model
        self.value_model = value_model

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        return self.model.predict_proba(model_input)
