"""Champion against challenger: the new deployed model and the champion scored on the same
comparison rows, and the promotion decision."""

from __future__ import annotations

import logging

import mlflow

from closeprob.features.build import build_features
from closeprob.models.classifier import CloseModel
from closeprob.models.promotion import Decision, decide_promotion
from closeprob.pipeline.config import Config
from closeprob.pipeline.core import Challenge, Dataset, PolicyScores, TrainingResult
from closeprob.pipeline.errors import CloseprobError, ModelNotFoundError
from closeprob.pipeline.evaluation import (
    declared_row_values,
    expected_values,
    row_values,
    rows_metrics,
    snapshot_quotes,
)
from closeprob.pipeline.registry import (
    CHAMPION,
    alias_versions,
    check_model_matches,
    load_registered_model,
)
from closeprob.pipeline.store import prepare_store

log = logging.getLogger(__name__)


def comparison_metrics(
    model: CloseModel, result: TrainingResult, dataset: Dataset, config: Config
) -> dict[str, float]:
    """A deployed model's metrics on the comparison rows (recent rows of held-out deals that
    no deployed fit sees), its features built with its own spec; deal values from the new
    value model, so only p_close differs between models."""
    data = result.data
    rows = data.role("comparison")
    snapshots = data.features.loc[rows, ["deal_id", "as_of"]]
    features = build_features(dataset.deals, dataset.interactions, snapshots, model.spec)
    p_close = model.predict_proba(features)
    quotes = snapshot_quotes(dataset, data)
    value = row_values(dataset.deals, data.features["deal_id"], result.value_model, quotes)[
        rows.to_numpy()
    ]
    policy = PolicyScores("deployed", p_close, expected_values(p_close, value))
    # The comparison rows hold `holdout_share` of each week's deals: a queue as deep in
    # proportion, or value captured would be near 1 for every model.
    capacity = max(1, round(config.evaluation.capacity * config.calibration.holdout_share))
    declared = declared_row_values(dataset.deals, data.features.loc[rows, "deal_id"])
    metrics = rows_metrics(data, rows, policy, declared, capacity)
    return {f"comparison_{k}": v for k, v in metrics.items()}


def champion_metrics(result: TrainingResult, dataset: Dataset, config: Config) -> dict[str, float]:
    """The champion's metrics on the challenger's comparison rows."""
    champion = load_registered_model(f"models:/{config.registered_model}@{CHAMPION}")
    check_model_matches(champion.close, dataset.deals, str(config.data.deals))
    return comparison_metrics(champion.close, result, dataset, config)


def judge_challenger(
    result: TrainingResult,
    dataset: Dataset,
    config: Config,
    implausible: str | None,
    comparison: dict[str, float],
) -> Challenge:
    """Compare the new deployed model with the champion on the same comparison rows (recent
    rows of deals held out of the new fit by a stable hash, so held out of every version's fit
    that used the same window); decide by the rule. `comparison` holds the new model's
    `comparison_*` metrics. A model whose test figures are too good to believe (`implausible`)
    is never promoted. Reads the registry, writes nothing (so a failure here moves no alias).
    """
    prepare_store()  # a new store's tables are made under its lock, not by two jobs at once
    if implausible is not None:
        return Challenge(Decision(False, implausible), {}, implausible)
    current = alias_versions(config.registered_model).get(CHAMPION)
    if current is None:
        return Challenge(Decision(True, "no champion before: the first model becomes champion"), {})
    try:
        old = champion_metrics(result, dataset, config)
    except ModelNotFoundError as exc:  # gone, changed, or an earlier release's pickle
        reason = (
            f"champion version {current} cannot be loaded, so the new model replaces it ({exc})"
        )
        return Challenge(Decision(True, reason), {})
    except CloseprobError as exc:
        reason = f"champion version {current} cannot score this data ({exc})"
        return Challenge(Decision(False, reason), {})
    primary = "comparison_" + config.evaluation.primary_metric.removeprefix("test_")
    decision = decide_promotion(
        comparison, old, primary, config.evaluation.log_loss_tolerance, "comparison_log_loss"
    )
    figures = {
        f"champion_{primary}": old[primary],
        "champion_comparison_log_loss": old["comparison_log_loss"],
    }
    return Challenge(decision, figures)


def log_challenge(challenge: Challenge) -> None:
    """The decision, its reason and the champion's figures, into the active training run."""
    mlflow.log_metrics(challenge.champion_metrics)
    promoted = challenge.decision.promote
    tags = {
        "promotion.decision": "promoted" if promoted else "kept champion",
        "promotion.reason": challenge.decision.reason,
    }
    if challenge.implausible is not None:
        tags["implausible"] = challenge.implausible
    mlflow.set_tags(tags)
