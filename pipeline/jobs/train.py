"""The `train` job: data → evaluate on the past, deploy on everything → trust checks → compare with
the champion → one MLflow run → register."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pandas as pd

from closeprob.features.build import build_features
from closeprob.features.registry import feature_descriptions
from closeprob.features.snapshots import open_deal_snapshots
from closeprob.models.promotion import implausible_reason, untrusted_reason
from closeprob.models.queue_plausibility import queue_shortfall_reason
from closeprob.pipeline.challenge import comparison_metrics, judge_challenger, log_challenge
from closeprob.pipeline.champion import publish_version
from closeprob.pipeline.config import Config
from closeprob.pipeline.core import Dataset, FeatureBuilder, TrainingResult
from closeprob.pipeline.dataset import load_job_data
from closeprob.pipeline.errors import TrainingDataError
from closeprob.pipeline.evaluation import evaluate_policies, model_policies, oracle_metrics
from closeprob.pipeline.plots import importance_figure, reliability_figure
from closeprob.pipeline.registry import LoggedModel, alias_versions, log_model
from closeprob.pipeline.report import print_training_report
from closeprob.pipeline.runs import (
    TrainingArtifacts,
    data_fingerprint,
    log_training_run,
    tracking_uri,
    version_notes,
)
from closeprob.pipeline.scoring import default_as_of
from closeprob.pipeline.training import train_close_model

log = logging.getLogger(__name__)


def training_artifacts(result: TrainingResult) -> TrainingArtifacts:
    """The feature table with each feature's gain, and the reliability and importance charts."""

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

    started = time.perf_counter()
    dataset = load_job_data(config)
    from closeprob.pipeline.plausibility import missing_stage_type

    no_stages = missing_stage_type(dataset.interactions, config.features.stage_event_type)
    if no_stages is not None:
        log.warning(f"{config.data.interactions}: {no_stages}")
    build: FeatureBuilder = build_features
    if engine == "spark":
        from closeprob.pipeline.spark.features import spark_feature_builder

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
