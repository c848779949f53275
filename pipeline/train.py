"""The training stage: snapshots → features and labels → time split → fit → calibrate → evaluate."""

from __future__ import annotations

from dataclasses import dataclass, replace

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.build import build_features
from features.labels import label_outcomes
from features.registry import categorical_features, feature_descriptions
from features.snapshots import open_deal_snapshots, training_dates
from features.spec import FeatureSpec, select_event_types
from models.classifier import (
    CloseModel,
    calibrate_classifier,
    encode_features,
    fit_categories,
    fit_classifier,
)
from models.metrics import classification_metrics
from models.split import SplitError, TimeSplit, split_dates
from models.value import DealValueModel, fit_value_model, value_errors
from pipeline.config import Config
from pipeline.dataset import Dataset
from pipeline.errors import TrainingDataError
from pipeline.synthetic import oracle_close_probability

MIN_OUTCOMES = 40
SLICES = ("train", "validation", "calibration", "test")


@dataclass(frozen=True)
class TrainingData:
    """Snapshot rows (deal_id, as_of, features), their labels and the slice each belongs to."""

    features: pd.DataFrame
    labels: pd.Series
    slices: pd.Series
    split: TimeSplit
    spec: FeatureSpec

    def rows(self, name: str) -> pd.Series:
        return self.slices == name


@dataclass(frozen=True)
class TrainingResult:
    model: CloseModel
    data: TrainingData
    metrics: dict[str, float]
    test_p_close: np.ndarray
    test_p_raw: np.ndarray
    value_model: DealValueModel


def check_outcomes(deals: pd.DataFrame, source: str) -> None:
    """Training needs at least MIN_OUTCOMES won and MIN_OUTCOMES lost deals."""
    won = int((deals["outcome"] == "won").sum())
    lost = int((deals["outcome"] == "lost").sum())
    if won < MIN_OUTCOMES or lost < MIN_OUTCOMES:
        raise TrainingDataError(
            f"{source}: column 'outcome' has {won} won and {lost} lost deals; training needs at "
            f"least {MIN_OUTCOMES} of each. Export a longer history, or include closed deals"
        )


def prepare_training_data(dataset: Dataset, config: Config) -> TrainingData:
    """Every (deal, as_of) pair with a known label, featurised point-in-time, split by time."""
    check_outcomes(dataset.deals, str(config.data.deals))
    horizon = config.snapshots.horizon_days
    dates = training_dates(
        dataset.deals, dataset.interactions, config.snapshots.every_days, horizon
    )
    try:
        split = split_dates(
            dates,
            horizon,
            config.split.test_share,
            config.split.calibration_share,
            config.split.validation_share,
        )
    except SplitError as exc:
        raise TrainingDataError(str(exc)) from None
    snapshots = open_deal_snapshots(dataset.deals, dates)
    slices = split.slice_of(snapshots["as_of"])
    snapshots, slices = (
        snapshots[slices != ""].reset_index(drop=True),
        slices[slices != ""].reset_index(drop=True),
    )
    spec = FeatureSpec(
        event_types=select_event_types(
            dataset.interactions, split.train[-1], config.features.max_types
        ),
        windows_days=config.features.windows_days,
        attributes=config.data.attributes,
        history_keys=tuple(k for k in config.features.history_keys if k in dataset.deals.columns),
        stage_event_type=config.features.stage_event_type,
        prior_strength=config.features.prior_strength,
    )
    features = build_features(dataset.deals, dataset.interactions, snapshots, spec)
    labels = label_outcomes(dataset.deals, snapshots, horizon)
    data = TrainingData(features=features, labels=labels, slices=slices, split=split, spec=spec)
    _check_slices(data)
    return data


def _check_slices(data: TrainingData) -> None:
    for name in SLICES:
        labels = data.labels[data.rows(name)]
        if labels.nunique() < 2:
            raise TrainingDataError(
                f"the {name} slice ({len(labels)} snapshot rows) has only label "
                f"{labels.unique().tolist()}; both won and not-won rows are needed in every slice. "
                "Use a longer history or a longer snapshots.horizon_days"
            )


@dataclass(frozen=True)
class FittedBooster:
    """The uncalibrated classifier, its columns and categories, and every row encoded."""

    booster: lgb.LGBMClassifier
    feature_names: list[str]
    categories: dict[str, list[str]]
    encoded: pd.DataFrame


def fit_booster(data: TrainingData, config: Config) -> FittedBooster:
    """LightGBM on the train slice, early-stopped on the validation slice."""
    names = list(feature_descriptions(data.spec))
    categories = fit_categories(data.features[data.rows("train")], categorical_features(data.spec))
    encoded = encode_features(data.features, names, categories)
    booster = fit_classifier(
        encoded[data.rows("train")],
        data.labels[data.rows("train")],
        encoded[data.rows("validation")],
        data.labels[data.rows("validation")],
        config.model.model_dump(),
        config.seed,
    )
    return FittedBooster(booster, names, categories, encoded)


def calibrate_booster(fitted: FittedBooster, data: TrainingData, config: Config) -> CloseModel:
    """The booster frozen, its probabilities calibrated on the calibration slice."""
    calibrated = calibrate_classifier(
        fitted.booster,
        fitted.encoded[data.rows("calibration")],
        data.labels[data.rows("calibration")],
        config.calibration.method,
    )
    return CloseModel(
        spec=data.spec,
        feature_names=fitted.feature_names,
        categories=fitted.categories,
        booster=fitted.booster,
        calibrated=calibrated,
        calibration_method=config.calibration.method,
    )


def fit_close_model(data: TrainingData, config: Config) -> CloseModel:
    """LightGBM on train, early-stopped on validation, calibrated on calibration."""
    return calibrate_booster(fit_booster(data, config), data, config)


def train_close_model(dataset: Dataset, config: Config) -> TrainingResult:
    """Fit and evaluate on the test slice, which starts after every fitting label window ends."""
    data = prepare_training_data(dataset, config)
    model = fit_close_model(data, config)
    test = data.rows("test")
    p_close, p_raw = model.predict_both(data.features[test])
    metrics = {
        f"test_{k}": v for k, v in classification_metrics(data.labels[test], p_close).items()
    }
    metrics |= {
        f"test_uncalibrated_{k}": v
        for k, v in classification_metrics(data.labels[test], p_raw).items()
    }
    metrics["best_iteration"] = float(model.booster.best_iteration_ or model.booster.n_estimators)
    if dataset.truth is not None:
        oracle = oracle_close_probability(
            dataset.truth,
            data.features.loc[test, ["deal_id", "as_of"]],
            dataset.deals,
            config.snapshots.horizon_days,
        )
        oracle_metrics = classification_metrics(data.labels[test], oracle.to_numpy())
        metrics["test_oracle_roc_auc"] = oracle_metrics["roc_auc"]
        metrics["test_oracle_log_loss"] = oracle_metrics["log_loss"]
    value_model = fit_deal_value_model(dataset.deals, data, config)
    test_deals = dataset.deals[dataset.deals["created_at"] >= data.split.test[0]]
    metrics |= {f"test_value_{k}": v for k, v in value_errors(value_model, test_deals).items()}
    median_only = replace(value_model, regressor=None)
    metrics |= {
        f"test_value_segment_median_{k}": v
        for k, v in value_errors(median_only, test_deals).items()
    }
    return TrainingResult(
        model=model,
        data=data,
        metrics=metrics,
        test_p_close=p_close,
        test_p_raw=p_raw,
        value_model=value_model,
    )


def fit_deal_value_model(deals: pd.DataFrame, data: TrainingData, config: Config) -> DealValueModel:
    """Value estimator on deals created before validation starts, kept only if it beats the
    segment median on deals created from then until the test period (by time, like the
    classifier)."""
    created = deals["created_at"]
    return fit_value_model(
        deals[created < data.split.validation[0]],
        deals[(created >= data.split.validation[0]) & (created < data.split.test[0])],
        list(config.data.attributes),
        config.value.segment,
        config.value.min_declared,
        config.seed,
    )
