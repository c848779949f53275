"""Where training is wired: snapshots → features and labels → time split → fit → calibrate →
test metrics (`train_close_model`), and the `train` job around it (`run_train`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np
import pandas as pd

from closeprob.features.build import build_features
from closeprob.features.labels import label_outcomes
from closeprob.features.registry import categorical_features, feature_descriptions
from closeprob.features.snapshots import open_deal_snapshots, training_dates
from closeprob.features.spec import FeatureSpec, select_event_types
from closeprob.models.classifier import (
    CloseModel,
    calibrate_classifier,
    encode_features,
    fit_categories,
    fit_classifier,
)
from closeprob.models.metrics import classification_metrics
from closeprob.models.split import SplitError, TimeSplit, split_dates
from closeprob.models.value import DealValueModel, fit_value_model, value_errors
from closeprob.pipeline.config import Config, named_columns
from closeprob.pipeline.dataset import Dataset
from closeprob.pipeline.errors import TrainingDataError
from closeprob.pipeline.progress import stage

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from closeprob.pipeline.runs import TrainingArtifacts

# `build_features`' signature: (deals, interactions, snapshot rows, spec) → feature rows.
FeatureBuilder = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, FeatureSpec], pd.DataFrame]
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


def prepare_training_data(
    dataset: Dataset, config: Config, build: FeatureBuilder = build_features
) -> TrainingData:
    """Every (deal, as_of) pair with a known label, featurised point-in-time (by `build`:
    `build_features`, or the Spark engine's, which runs it per partition), split by time."""
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
    with stage(f"features for {len(snapshots):,} snapshot rows"):
        features = build(dataset.deals, dataset.interactions, snapshots, spec)
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
    with stage(f"fitting LightGBM on {int(data.rows('train').sum()):,} rows"):
        fitted = fit_booster(data, config)
    with stage(f"calibrating ({config.calibration.method})"):
        return calibrate_booster(fitted, data, config)


def train_close_model(
    dataset: Dataset, config: Config, build: FeatureBuilder = build_features
) -> TrainingResult:
    """Fit and evaluate on the test slice, which starts after every fitting label window ends."""
    data = prepare_training_data(dataset, config, build)
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


def training_artifacts(result: TrainingResult) -> TrainingArtifacts:
    """The feature table with each feature's gain, and the reliability and importance charts."""
    from closeprob.pipeline.plots import importance_figure, reliability_figure
    from closeprob.pipeline.runs import TrainingArtifacts

    model = result.model
    importance = pd.Series(
        model.booster.booster_.feature_importance("gain"), index=model.feature_names
    )
    described = feature_descriptions(model.spec)
    table = pd.DataFrame(
        {
            "feature": list(described),
            "description": list(described.values()),
            "gain": importance.reindex(list(described)).to_numpy(),
        }
    )
    y_test = result.data.labels[result.data.rows("test")].to_numpy()
    curves = {
        f"calibrated ({model.calibration_method})": result.test_p_close,
        "uncalibrated": result.test_p_raw,
    }
    return TrainingArtifacts(
        features=table,
        features_text="\n".join(f"{name}: {text}" for name, text in described.items()) + "\n",
        figures={
            "reliability.png": reliability_figure(y_test, curves, "Reliability on the test slice"),
            "feature_importance.png": importance_figure(importance),
        },
    )


def run_train(config: Config, engine: str = "local") -> None:
    """The `train` job: data → fit, evaluate → one MLflow run → register → champion/challenger.

    With `engine` "spark" the snapshot × deal feature table is built on Spark (and kept as
    Parquet); LightGBM fits on the driver from it."""
    from closeprob.pipeline.dataset import ensure_data, load_dataset
    from closeprob.pipeline.evaluate import evaluate_policies, model_policies, oracle_metrics
    from closeprob.pipeline.registry import (
        alias_versions,
        challenge_champion,
        describe_version,
        log_model,
        set_aliases,
    )
    from closeprob.pipeline.report import print_training_report
    from closeprob.pipeline.runs import log_training_run, tracking_uri, version_notes

    ensure_data(config)
    started = time.perf_counter()
    dataset = load_dataset(
        config.data, named_columns(config), "train", now=pd.Timestamp.now(tz="UTC")
    )
    build: FeatureBuilder = build_features
    if engine == "spark":
        from closeprob.pipeline.spark import spark_feature_builder

        build = spark_feature_builder(config)
    result = train_close_model(dataset, config, build)
    result = replace(result, metrics=result.metrics | oracle_metrics(result.data, dataset, config))
    (evaluation, _) = evaluate_policies(result, dataset, config, model_policies(result))
    example = result.data.features.loc[result.data.rows("test"), result.model.feature_names]
    run_id, model_version = log_training_run(
        result,
        dataset,
        config,
        evaluation,
        training_artifacts(result),
        lambda: log_model(
            result.model, result.value_model, example.head(5), config.registered_model
        ),
    )
    describe_version(
        config.registered_model, model_version, *version_notes(result, dataset, config)
    )
    set_aliases(config.registered_model, model_version)
    decision = challenge_champion(result, dataset, config, evaluation, run_id, model_version)
    aliases = sorted(
        (a for a, v in alias_versions(config.registered_model).items() if v == model_version),
        reverse=True,
    )
    seconds = time.perf_counter() - started
    print_training_report(result, run_id, model_version, aliases, config, tracking_uri(), seconds)
    verdict = "promoted to champion" if decision.promote else "not promoted"
    log.info(f"champion/challenger: version {model_version} {verdict}: {decision.reason}")
