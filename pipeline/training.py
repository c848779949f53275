"""Training: snapshots → features and labels → time split → fit → calibrate → test metrics
(`train_close_model`): the evaluated model and the deployed one, and the deal-value model."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pandas as pd

from closeprob.features.build import build_features
from closeprob.features.labels import label_outcomes
from closeprob.features.registry import categorical_features, feature_descriptions
from closeprob.features.snapshots import open_deal_snapshots, training_dates
from closeprob.features.spec import FeatureSpec, select_event_types
from closeprob.models.classifier import CloseModel
from closeprob.models.cross_fit import fit_cross_fitted_model
from closeprob.models.health import training_reference
from closeprob.models.metrics import classification_metrics
from closeprob.models.selection import Selection, rolling_folds, select_by_rolling_origin
from closeprob.models.split import (
    SplitError,
    deployment_split,
    split_dates,
)
from closeprob.models.training import (
    fit_deployed_model,
    fit_evaluated_model,
    pace_for_rows,
    sample_rows,
    split_count,
    tree_count,
    varying_terms_over,
)
from closeprob.models.value import (
    DealValueModel,
    fit_value_model,
    refit_value_model,
    value_errors,
)
from closeprob.pipeline.config import Config
from closeprob.pipeline.core import (
    ROLES,
    SLICES,
    Dataset,
    FeatureBuilder,
    TrainingData,
    TrainingResult,
)
from closeprob.pipeline.errors import TrainingDataError
from closeprob.pipeline.leaks import leak_messages
from closeprob.pipeline.progress import stage

log = logging.getLogger(__name__)

MIN_OUTCOMES = 40


def check_outcomes(deals: pd.DataFrame, source: str) -> None:
    """Training needs at least MIN_OUTCOMES won and MIN_OUTCOMES lost deals."""
    won = int((deals["outcome"] == "won").sum())
    lost = int((deals["outcome"] == "lost").sum())
    if won < MIN_OUTCOMES or lost < MIN_OUTCOMES:
        raise TrainingDataError(
            f"{source}: column 'outcome' has {won} won and {lost} lost deals; training needs at "
            f"least {MIN_OUTCOMES} of each. Export a longer history, or include closed deals"
        )


def refuse_leaky_columns(
    deals: pd.DataFrame, columns: tuple[str, ...], allowed: tuple[str, ...], source: str
) -> None:
    """A TrainingDataError naming every model input column (attributes, history keys) filled,
    or valued, very differently in open and closed deals (`pipeline/leaks.py`)."""

    messages = leak_messages(deals, columns, allowed, source)
    if messages:
        raise TrainingDataError("; ".join(messages))


def prepare_training_data(
    dataset: Dataset, config: Config, build: FeatureBuilder = build_features
) -> TrainingData:
    """Every (deal, as_of) pair with a known label, featurised point-in-time (by `build`:
    `build_features`, or the Spark engine's, which runs it per partition), split by time
    for evaluation and by role for the deployed model."""
    check_outcomes(dataset.deals, str(config.data.deals))
    history_keys = tuple(k for k in config.features.history_keys if k in dataset.deals.columns)
    refuse_leaky_columns(
        dataset.deals,
        (*config.data.attributes, *history_keys),
        config.data.allow_suspect_columns,
        str(config.data.deals),
    )
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
    spec = FeatureSpec(
        event_types=select_event_types(
            dataset.interactions, split.train[-1], config.features.max_types
        ),
        windows_days=config.features.windows_days,
        attributes=config.data.attributes,
        history_keys=history_keys,
        stage_event_type=config.features.stage_event_type,
        prior_strength=config.features.prior_strength,
        market_window_days=config.features.market_window_days,
        stage_history=config.features.stage_history,
        stage_names=config.data.stages,
        snapshot_ranks=config.features.snapshot_ranks,
        calendar=config.features.calendar,
    )
    with stage(f"features for {len(snapshots):,} snapshot rows"):
        features = build(dataset.deals, dataset.interactions, snapshots, spec)
    labels = label_outcomes(dataset.deals, snapshots, horizon)
    deployment = deployment_split(
        snapshots, config.calibration.window_share, config.calibration.holdout_share
    )
    data = TrainingData(features, labels, slices, split, spec, deployment)
    _check_slices(data)
    return data


def _check_slices(data: TrainingData) -> None:
    named = [(f"the {name} slice", data.rows(name)) for name in SLICES]
    named += [(f"the deployed model's {name} rows", data.role(name)) for name in ROLES]
    for name, rows in named:
        labels = data.labels[rows]
        if labels.nunique() < 2:
            raise TrainingDataError(
                f"{name} ({len(labels)} snapshot rows) has only label "
                f"{labels.unique().tolist()}; both won and not-won rows are needed in every slice. "
                "Use a longer history, a longer snapshots.horizon_days, or a larger "
                "calibration.window_share"
            )


def _as_date(when: pd.Timestamp) -> str:
    return str(when.date())


# ModelConfig's own, not LightGBM's
PACE_KEYS = {"learning_rate_rows", "max_learning_rate", "booster_rows", "logistic_rows"}


def fit_params(data: TrainingData, config: Config) -> dict[str, Any]:
    """LightGBM's parameters for every fit of this run: the configured ones, the learning rate
    paced to the deployed model's fit row count (`pace_for_rows`), one rate per run, so the
    tree count the selection folds choose at that rate carries over to the evaluated and
    deployed fits."""
    model = config.model
    params = model.model_dump(exclude=PACE_KEYS)
    rows = int(data.role("fit").sum())
    return pace_for_rows(params, rows, model.learning_rate_rows, model.max_learning_rate)


def select_model(data: TrainingData, config: Config) -> Selection:
    """Tree count and blend weight by rolling-origin validation over the train and validation
    slices' dates (`config.split.selection_folds` folds, the validation slice the latest)."""
    folds = rolling_folds(
        data.split.train,
        data.split.validation,
        config.snapshots.horizon_days,
        config.split.selection_folds,
    )
    try:
        return select_by_rolling_origin(
            data.features,
            data.labels,
            folds,
            list(feature_descriptions(data.spec)),
            categorical_features(data.spec),
            fit_params(data, config),
            config.seed,
            config.model.logistic_rows,
            config.model.booster_rows,
        )
    except ValueError as exc:
        raise TrainingDataError(str(exc)) from None


def fit_selected(data: TrainingData, config: Config, selection: Selection) -> CloseModel:
    """The evaluated model, built as the deployed one is but from the slices before the test
    embargo: the selection's tree count and blend weight, fitted on the train, validation and
    calibration slices, calibrated on the calibration slice's out-of-fold scores
    (`fit_cross_fitted_model`). Every label it uses is known before the test slice starts."""
    fit = data.rows("train") | data.rows("validation") | data.rows("calibration")
    return fit_cross_fitted_model(
        data.features,
        data.labels,
        fit,
        data.rows("calibration"),
        data.spec,
        list(feature_descriptions(data.spec)),
        categorical_features(data.spec),
        fit_params(data, config),
        selection.trees,
        config.seed,
        config.calibration.method,
        selection.blend_weight,
        config.calibration.folds,
        config.calibration.pool_slope,
        config.model.logistic_rows,
        config.model.booster_rows,
        selection.judged_rows(data.features),
    )


def fit_evaluated(data: TrainingData, config: Config) -> CloseModel:
    """LightGBM on the train slice, early-stopped on validation, calibrated on calibration."""
    return fit_evaluated_model(
        data.features,
        data.labels,
        {name: data.rows(name) for name in ("train", "validation", "calibration")},
        data.spec,
        list(feature_descriptions(data.spec)),
        categorical_features(data.spec),
        fit_params(data, config),
        config.seed,
        config.calibration.method,
        config.model.logistic_rows,
    )


def fit_deployed(
    data: TrainingData,
    config: Config,
    trees: int | None = None,
    blend_weight: float = 1.0,
    judged: pd.Series | None = None,
) -> CloseModel:
    """Every labelled row outside the comparison deals, `trees` trees (early stopping's count
    on the validation slice; None: early-stopped on the calibration rows, for
    bench/deployment_fit.py only), blended with a logistic regression on the same rows at
    `blend_weight` (the evaluated model's choice), calibrated on the out-of-fold scores of
    every recent deal (`fit_cross_fitted_model`: no row that calibrates it early-stopped it
    or was scored by a model fitted on its deal); no `judged` row (`Selection.judged_rows`:
    those that chose `trees` and `blend_weight`) fits the map."""
    if trees is None:
        return fit_deployed_model(
            data.features,
            data.labels,
            data.role("fit") & ~data.role("calibration"),
            data.role("calibration"),
            data.spec,
            list(feature_descriptions(data.spec)),
            categorical_features(data.spec),
            fit_params(data, config),
            None,
            config.seed,
            config.calibration.method,
            blend_weight,
            config.model.logistic_rows,
        )
    return fit_cross_fitted_model(
        data.features,
        data.labels,
        data.role("fit"),
        data.role("calibration"),
        data.spec,
        list(feature_descriptions(data.spec)),
        categorical_features(data.spec),
        fit_params(data, config),
        trees,
        config.seed,
        config.calibration.method,
        blend_weight,
        config.calibration.folds,
        config.calibration.pool_slope,
        config.model.logistic_rows,
        config.model.booster_rows,
        judged,
    )


def train_close_model(
    dataset: Dataset, config: Config, build: FeatureBuilder = build_features
) -> TrainingResult:
    """Evaluate on the past, deploy on everything.

    Tree count and blend weight come from rolling-origin folds over the train and validation
    slices. The evaluated model is fitted on every slice before the test embargo, calibrated
    out of fold on the calibration slice, and measured on the test slice, which starts after
    every label window it used ends. The deployed model is the same recipe on all labelled
    rows but the comparison deals, calibrated out of fold on the latest window's rows.
    """
    data = prepare_training_data(dataset, config, build)
    with stage("choosing trees and blend weight on rolling-origin folds"):
        selection = select_model(data, config)
    before_test = int(
        (data.rows("train") | data.rows("validation") | data.rows("calibration")).sum()
    )
    with stage(f"fitting and cross-fit calibrating on {before_test:,} rows before the test"):
        evaluated = fit_selected(data, config, selection)
    test = data.rows("test")
    p_close, p_raw = evaluated.predict_both(data.features[test])
    metrics = {
        f"test_{k}": v for k, v in classification_metrics(data.labels[test], p_close).items()
    }
    metrics |= {
        f"test_uncalibrated_{k}": v
        for k, v in classification_metrics(data.labels[test], p_raw).items()
    }
    best = selection.trees
    params = fit_params(data, config)
    with stage(f"fitting the deployed model on {int(data.role('fit').sum()):,} rows"):
        deployed = fit_deployed(
            data, config, best, evaluated.blend_weight, selection.judged_rows(data.features)
        )
    log.info(
        f"blend weight of the booster: {evaluated.blend_weight:.2f}, {best} trees at learning "
        f"rate {params['learning_rate']:.3f} (rolling origin, {len(selection.trees_by_fold)} "
        f"folds: trees {selection.trees_by_fold})"
    )
    metrics |= selection.figures()
    metrics |= {
        "learning_rate": float(params["learning_rate"]),
        "best_iteration": float(best),
        "deployed_trees": float(tree_count(deployed.booster)),
        "evaluated_splits": float(split_count(evaluated.booster)),
        "deployed_splits": float(split_count(deployed.booster)),
        "blend_weight": evaluated.blend_weight,
        "evaluated_terms": float(varying_terms_over(evaluated, data.features, data.rows("train"))),
        "deployed_terms": float(varying_terms_over(deployed, data.features, data.role("fit"))),
    }
    # Deal values, the same way: measured on the past, deployed on every declared amount.
    evaluated_value = fit_deal_value_model(dataset.deals, data, config)
    test_deals = dataset.deals[dataset.deals["created_at"] >= data.split.test[0]]
    metrics |= {f"test_value_{k}": v for k, v in value_errors(evaluated_value, test_deals).items()}
    median_only = replace(evaluated_value, regressor=None)
    metrics |= {
        f"test_value_segment_median_{k}": v
        for k, v in value_errors(median_only, test_deals).items()
    }
    fit_dates = data.features.loc[data.role("fit"), "as_of"]
    window = data.deployment.window
    trained_through = _as_date(fit_dates.max())
    reference_rows = sample_rows(data.role("fit"), config.health.reference_rows, config.seed)
    with stage(f"health reference of {int(reference_rows.sum()):,} training rows"):
        reference = training_reference(
            deployed,
            data.features[reference_rows],
            dataset.interactions,
            fit_dates.max(),
            trained_through,
            config.snapshots.horizon_days,
        )
    return TrainingResult(
        model=replace(deployed, reference=reference),
        evaluated=evaluated,
        data=data,
        metrics=metrics,
        test_p_close=p_close,
        test_p_raw=p_raw,
        value_model=refit_value_model(evaluated_value, dataset.deals, config.seed),
        evaluated_value_model=evaluated_value,
        trained_through=trained_through,
        calibrated_on=f"{_as_date(window[0])}/{_as_date(window[-1])}",
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
