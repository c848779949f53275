"""Champion/challenger after training, and promotion or rollback by hand."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient

from features.build import build_features
from models.promotion import Decision, decide_promotion
from pipeline.config import Config
from pipeline.dataset import Dataset
from pipeline.errors import CloseprobError
from pipeline.evaluate import Evaluation, PolicyScores, expected_values, row_values, test_metrics
from pipeline.predict import check_model_matches
from pipeline.tracking import CHAMPION, alias_versions, load_registered_model, tracking_uri
from pipeline.train import TrainingResult

PREVIOUS_CHAMPION_TAG = "previous_champion"


def champion_metrics(result: TrainingResult, dataset: Dataset, config: Config) -> dict[str, float]:
    """The champion's test metrics on the challenger's test rows (features built with the
    champion's own spec; values from the challenger's value model, so only p_close differs)."""
    champion = load_registered_model(f"models:/{config.registered_model}@{CHAMPION}")
    check_model_matches(champion.close, dataset.deals, str(config.data.deals))
    data = result.data
    test = data.rows("test")
    snapshots = data.features.loc[test, ["deal_id", "as_of"]]
    features = build_features(dataset.deals, dataset.interactions, snapshots, champion.close.spec)
    p_close = champion.close.predict_proba(features)
    value = row_values(dataset.deals, data.features["deal_id"], result.value_model)[test.to_numpy()]
    policy = PolicyScores("champion", p_close, expected_values(p_close, value))
    return test_metrics(data, policy, value, config.evaluation.capacity)


def challenge_champion(
    result: TrainingResult,
    dataset: Dataset,
    config: Config,
    evaluation: Evaluation,
    run_id: str,
    version: str,
) -> Decision:
    """Compare the new version with the champion on the same test slice; promote by the rule.

    The decision, both figures and the reason are logged to the training run.
    """
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    current = alias_versions(config.registered_model).get(CHAMPION)
    if current == version:
        decision = Decision(True, "no champion before: the first model becomes champion")
    else:
        try:
            old = champion_metrics(result, dataset, config)
        except CloseprobError as exc:
            decision = Decision(False, f"champion version {current} cannot score this data ({exc})")
        else:
            primary = config.evaluation.primary_metric
            decision = decide_promotion(
                evaluation.metrics | result.metrics,
                old,
                primary,
                config.evaluation.log_loss_tolerance,
            )
            client.log_metric(run_id, f"champion_{primary}", old[primary])
            client.log_metric(run_id, "champion_test_log_loss", old["test_log_loss"])
            if decision.promote:
                set_champion(config.registered_model, version)
    client.set_tag(
        run_id, "promotion.decision", "promoted" if decision.promote else "kept champion"
    )
    client.set_tag(run_id, "promotion.reason", decision.reason)
    return decision


def set_champion(name: str, version: str) -> str | None:
    """Point `champion` at `version`, remembering the one it replaces for --rollback."""
    client = MlflowClient()
    try:
        client.get_model_version(name, version)
    except mlflow.exceptions.MlflowException:
        raise CloseprobError(f"registered model {name!r} has no version {version!r}") from None
    previous = alias_versions(name).get(CHAMPION)
    if previous is not None and previous != version:
        client.set_registered_model_tag(name, PREVIOUS_CHAMPION_TAG, previous)
    client.set_registered_model_alias(name, CHAMPION, version)
    return previous


def rollback_champion(name: str) -> tuple[str, str]:
    """Point `champion` back at the version it replaced last; (from, to)."""
    mlflow.set_tracking_uri(tracking_uri())
    try:
        tags = MlflowClient().get_registered_model(name).tags
    except mlflow.exceptions.MlflowException:
        raise CloseprobError(
            f"registered model {name!r} not found; run `make train` first"
        ) from None
    previous = tags.get(PREVIOUS_CHAMPION_TAG)
    if previous is None:
        raise CloseprobError(f"{name!r} has no earlier champion to roll back to")
    current = alias_versions(name).get(CHAMPION, "none")
    set_champion(name, previous)
    return current, previous


def promote_version(name: str, version: str) -> str | None:
    mlflow.set_tracking_uri(tracking_uri())
    return set_champion(name, version)
