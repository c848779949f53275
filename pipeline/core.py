"""The data classes several jobs and services share: the data set, the labelled training rows,
a training result and an evaluation. Nothing here reads a file or calls MLflow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from closeprob.features.spec import FeatureSpec
from closeprob.models.classifier import CloseModel
from closeprob.models.promotion import Decision
from closeprob.models.split import DeploymentSplit, TimeSplit
from closeprob.models.value import DealValueModel

if TYPE_CHECKING:
    from matplotlib.figure import Figure


# `build_features`' signature: (deals, interactions, snapshot rows, spec) → feature rows.
FeatureBuilder = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, FeatureSpec], pd.DataFrame]


SLICES = ("train", "validation", "calibration", "test")


ROLES = ("fit", "calibration", "comparison")


@dataclass(frozen=True)
class TrainingData:
    """Every labelled snapshot row (deal_id, as_of, features), its label, the evaluation slice
    it belongs to ('' in the embargo) and its role for the deployed model."""

    features: pd.DataFrame
    labels: pd.Series
    slices: pd.Series
    split: TimeSplit
    spec: FeatureSpec
    deployment: DeploymentSplit

    def rows(self, name: str) -> pd.Series:
        return self.slices == name

    def role(self, name: str) -> pd.Series:
        return pd.Series(getattr(self.deployment, name), index=self.features.index)


@dataclass(frozen=True)
class TrainingResult:
    """`model` is the deployed model (registered); `evaluated` the one built the same way from
    the slices before the test embargo, whose test-slice probabilities are `test_p_close` /
    `test_p_raw`."""

    model: CloseModel
    evaluated: CloseModel
    data: TrainingData
    metrics: dict[str, float]
    test_p_close: np.ndarray
    test_p_raw: np.ndarray
    value_model: DealValueModel
    evaluated_value_model: DealValueModel
    trained_through: str
    calibrated_on: str


@dataclass(frozen=True)
class PolicyScores:
    """One family's test-slice scores: probabilities, and the score its queue is sorted by."""

    family: str
    p_close: np.ndarray
    queue_score: np.ndarray


@dataclass(frozen=True)
class Evaluation:
    """One policy's test metrics, figures (PNG name → figure) and per-segment table."""

    family: str
    metrics: dict[str, float]
    figures: dict[str, Figure]
    segments: pd.DataFrame | None


@dataclass(frozen=True)
class Dataset:
    deals: pd.DataFrame
    interactions: pd.DataFrame
    truth: pd.DataFrame | None


@dataclass(frozen=True)
class Challenge:
    """The champion/challenger decision for a new model, the champion's figures, and why the
    model is implausible (never promoted), if it is."""

    decision: Decision
    champion_metrics: dict[str, float]
    implausible: str | None = None
