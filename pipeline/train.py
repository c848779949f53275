"""Where training is wired: snapshots → features and labels → time split → fit → calibrate →
test metrics (`train_close_model`), and the `train` job around it (`run_train`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from closeprob.features.build import build_features
from closeprob.features.labels import label_outcomes
from closeprob.features.registry import categorical_features, feature_descriptions
from closeprob.features.snapshots import open_deal_snapshots, training_dates
from closeprob.features.spec import FeatureSpec, select_event_types
from closeprob.models.classifier import CloseModel
from closeprob.models.health import training_reference
from closeprob.models.metrics import classification_metrics
from closeprob.models.promotion import implausible_reason, untrusted_reason
from closeprob.models.split import (
    DeploymentSplit,
    SplitError,
    TimeSplit,
    deployment_split,
    split_dates,
)
from closeprob.models.training import (
    fit_deployed_model,
    fit_evaluated_model,
    split_count,
    tree_count,
    varying_terms,
)
from closeprob.models.value import (
    DealValueModel,
    fit_value_model,
    refit_value_model,
    value_errors,
)
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
    """`model` is the deployed model (registered); `evaluated` the one fitted on the training
    slice, whose test-slice probabilities are `test_p_close` / `test_p_raw`."""

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
    from closeprob.pipeline.leaks import leak_messages

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


def fit_evaluated(data: TrainingData, config: Config) -> CloseModel:
    """LightGBM on the train slice, early-stopped on validation, calibrated on calibration."""
    return fit_evaluated_model(
        data.features,
        data.labels,
        {name: data.rows(name) for name in ("train", "validation", "calibration")},
        data.spec,
        list(feature_descriptions(data.spec)),
        categorical_features(data.spec),
        config.model.model_dump(),
        config.seed,
        config.calibration.method,
    )


def fit_deployed(
    data: TrainingData, config: Config, trees: int | None = None, blend_weight: float = 1.0
) -> CloseModel:
    """Every labelled row outside the held-out deals, its tree count chosen again by early
    stopping on the held-out calibration deals of the latest window (or `trees`, fixed),
    blended with a logistic regression on the same rows at `blend_weight` (the evaluated
    model's choice on the validation slice), then calibrated on them. (Measured against early
    stopping's count from the train slice, as is and scaled to the row count:
    bench/deployment_fit.py, README "Evaluate on the past, deploy on everything".)"""
    return fit_deployed_model(
        data.features,
        data.labels,
        data.role("fit"),
        data.role("calibration"),
        data.spec,
        list(feature_descriptions(data.spec)),
        categorical_features(data.spec),
        config.model.model_dump(),
        trees,
        config.seed,
        config.calibration.method,
        blend_weight,
    )


def train_close_model(
    dataset: Dataset, config: Config, build: FeatureBuilder = build_features
) -> TrainingResult:
    """Evaluate on the past, deploy on everything.

    The evaluated model is fitted on the train slice and measured on the test slice, which
    starts after every label window it used ends. The deployed model is fitted on all
    labelled rows but the held-out deals, early-stopped and calibrated on the latest
    window's held-out deals.
    """
    data = prepare_training_data(dataset, config, build)
    with stage(f"fitting and calibrating on {int(data.rows('train').sum()):,} training rows"):
        evaluated = fit_evaluated(data, config)
    test = data.rows("test")
    p_close, p_raw = evaluated.predict_both(data.features[test])
    metrics = {
        f"test_{k}": v for k, v in classification_metrics(data.labels[test], p_close).items()
    }
    metrics |= {
        f"test_uncalibrated_{k}": v
        for k, v in classification_metrics(data.labels[test], p_raw).items()
    }
    best = tree_count(evaluated.booster)
    with stage(f"fitting the deployed model on {int(data.role('fit').sum()):,} rows"):
        deployed = fit_deployed(data, config, blend_weight=evaluated.blend_weight)
    log.info(f"blend weight of the booster (chosen on validation): {evaluated.blend_weight:.2f}")
    metrics |= {
        "best_iteration": float(best),
        "deployed_trees": float(tree_count(deployed.booster)),
        "evaluated_splits": float(split_count(evaluated.booster)),
        "deployed_splits": float(split_count(deployed.booster)),
        "blend_weight": evaluated.blend_weight,
        "evaluated_terms": float(varying_terms(evaluated, _fitted_rows(evaluated, data, "train"))),
        "deployed_terms": float(varying_terms(deployed, _fitted_rows(deployed, data, "fit"))),
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
    with stage("health reference of the training rows"):
        reference = training_reference(
            deployed,
            data.features[data.role("fit")],
            dataset.interactions,
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


def _fitted_rows(model: CloseModel, data: TrainingData, name: str) -> pd.DataFrame:
    """The encoded rows a model was fitted on: the train slice, or the deployed `fit` role."""
    rows = data.rows(name) if name in SLICES else data.role(name)
    return model.encode(data.features[rows])


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
    importance = pd.Series(model.trees.feature_importance("gain"), index=model.feature_names)
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


def queue_shortfall(result: TrainingResult, dataset: Dataset, config: Config) -> str | None:
    """Why the deployed model's queue at the data's end is not believable (its mean p_close far
    below the past win rate of open deals of the same ages), or None."""
    from closeprob.models.queue_plausibility import queue_shortfall_reason
    from closeprob.pipeline.predict import default_as_of

    as_of = default_as_of(dataset, pd.Timestamp.now(tz="UTC"))
    snapshots = open_deal_snapshots(dataset.deals, pd.DatetimeIndex([as_of]))
    if snapshots.empty:
        return None
    features = build_features(dataset.deals, dataset.interactions, snapshots, result.data.spec)
    p_close, _ = result.model.predict_both(features)
    return queue_shortfall_reason(
        p_close,
        features["deal_age_days"].to_numpy(dtype=float),
        result.data.features["deal_age_days"].to_numpy(dtype=float),
        result.data.labels.to_numpy(dtype=float),
        config.evaluation.min_queue_ratio,
    )


def check_trustworthy(
    result: TrainingResult, metrics: dict[str, float], deals: pd.DataFrame
) -> None:
    """Refuse (exit 2, nothing registered) a constant model (no booster split nor varying
    linear term in any part with weight), or one whose test ROC-AUC is not above 0.5 by more
    than its 95 % interval, with the counts and what to do."""
    terms = min(int(metrics["evaluated_terms"]), int(metrics["deployed_terms"]))
    reason = untrusted_reason(terms, metrics["test_roc_auc_lo"], metrics["test_roc_auc"])
    if reason is None:
        return
    data = result.data
    won = int((deals["outcome"] == "won").sum())
    lost = int((deals["outcome"] == "lost").sum())
    raise TrainingDataError(
        f"not registered: {reason}. Data: {won} won and {lost} lost deals; "
        f"{int(data.rows('train').sum())} training rows "
        f"({int(data.labels[data.rows('train')].sum())} won), "
        f"{int(data.rows('test').sum())} test rows "
        f"({int(data.labels[data.rows('test')].sum())} won). Use a longer history with more "
        "closed deals, a longer snapshots.horizon_days, or check that the interactions carry "
        "signal (README: Minimum data)"
    )


def run_train(config: Config, engine: str = "local") -> None:
    """The `train` job: data → evaluate on the past, deploy on everything → trust checks →
    compare with the champion → one MLflow run → register and move aliases, last (nothing in
    the registry changes if anything before fails or the job is stopped).

    With `engine` "spark" the snapshot × deal feature table is built on Spark (and kept as
    Parquet); LightGBM fits on the driver from it."""
    from closeprob.pipeline.champion import publish_version
    from closeprob.pipeline.dataset import ensure_data, load_dataset
    from closeprob.pipeline.evaluate import evaluate_policies, model_policies, oracle_metrics
    from closeprob.pipeline.registry import (
        LoggedModel,
        alias_versions,
        comparison_metrics,
        judge_challenger,
        log_challenge,
        log_model,
    )
    from closeprob.pipeline.report import print_training_report
    from closeprob.pipeline.runs import (
        data_fingerprint,
        log_training_run,
        tracking_uri,
        version_notes,
    )

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
    metrics = result.metrics | evaluation.metrics
    check_trustworthy(result, metrics, dataset.deals)
    implausible = implausible_reason(metrics, config.evaluation.max_plausible_auc)
    implausible = implausible or queue_shortfall(result, dataset, config)
    comparison = comparison_metrics(result.model, result, dataset, config)
    metrics |= comparison
    challenge = judge_challenger(result, dataset, config, implausible, comparison)
    example = result.data.features.loc[result.data.rows("test"), result.model.feature_names]
    fingerprint = data_fingerprint(dataset)  # hashes every row: once per run
    description, tags = version_notes(result, fingerprint, config)
    tags |= {"trained_through": result.trained_through, "calibrated_on": result.calibrated_on}
    if implausible is not None:
        tags["implausible"] = implausible
    logged: dict[str, LoggedModel] = {}
    published: dict[str, str] = {}

    def log_extra() -> None:
        logged["model"] = log_model(result.model, result.value_model, example.head(5))
        log_challenge(challenge)

    def publish() -> None:
        published["version"] = publish_version(
            logged["model"], config.registered_model, challenge, (description, tags)
        )

    run_id = log_training_run(
        replace(result, metrics=metrics),
        dataset,
        config,
        evaluation,
        training_artifacts(result),
        fingerprint,
        log_extra,
        publish,
    )
    model_version = published["version"]
    aliases = sorted(
        (a for a, v in alias_versions(config.registered_model).items() if v == model_version),
        reverse=True,
    )
    seconds = time.perf_counter() - started
    print_training_report(
        replace(result, metrics=metrics),
        run_id,
        model_version,
        aliases,
        config,
        tracking_uri(),
        seconds,
    )
    decision = challenge.decision
    verdict = "promoted to champion" if decision.promote else "not promoted"
    log.info(f"champion/challenger: version {model_version} {verdict}: {decision.reason}")
