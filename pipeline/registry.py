"""The registered model, end to end: what it is (the pyfunc), how it is logged, loaded and
aliased, champion/challenger after training, promotion and rollback by hand.

Every read or write of MLflow's model registry is here; run logging is in `runs.py`.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import requires
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel
from packaging.requirements import Requirement

import closeprob.features
import closeprob.models
import closeprob.pipeline
from closeprob.features.build import build_features
from closeprob.models.classifier import CloseModel
from closeprob.models.promotion import Decision, decide_promotion
from closeprob.models.value import DealValueModel
from closeprob.pipeline.config import Config
from closeprob.pipeline.dataset import Dataset
from closeprob.pipeline.errors import CloseprobError, DataContractError, ModelNotFoundError
from closeprob.pipeline.evaluate import (
    PolicyScores,
    expected_values,
    row_values,
    rows_metrics,
)
from closeprob.pipeline.runs import tracking_uri
from closeprob.pipeline.train import TrainingResult

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
PREVIOUS_CHAMPION_TAG = "previous_champion"

# Module paths that models registered by closeprob 0.1 (before the `closeprob` namespace)
# pickled, and where those names live now.
LEGACY_MODULES = {
    "pipeline": "closeprob.pipeline",
    "pipeline.pyfunc": "closeprob.pipeline.registry",
    "models": "closeprob.models",
    "models.classifier": "closeprob.models.classifier",
    "models.value": "closeprob.models.value",
    "features": "closeprob.features",
    "features.spec": "closeprob.features.spec",
}


class CloseProbabilityModel(PythonModel):
    """The MLflow pyfunc. Input: one row per (deal, as_of) with the model's feature columns;
    output: P(won within the horizon), calibrated, one float per row (not labels).

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


@dataclass(frozen=True)
class LoadedModel:
    """A registry model unwrapped: the classifier, its value estimator, where it came from."""

    close: CloseModel
    value: DealValueModel | None
    uri: str
    version: str


def _requirements() -> list[str]:
    """closeprob's own runtime dependencies (pyproject's, read from the installed metadata, so
    the list cannot fall behind), plus cloudpickle, which wrote the pyfunc; each pinned to the
    version that logged the model. The pickled classes import all of closeprob's modules."""
    names = ["cloudpickle"]
    for text in requires("closeprob") or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(requirement.name)
    return [f"{name}=={package_version(name)}" for name in dict.fromkeys(names)]


@contextmanager
def closeprob_code() -> Iterator[Path]:
    """A temporary `closeprob/` package tree of the running code, to log as the model's code.

    The installed namespace maps `closeprob.pipeline` to pipeline/ (and so on) through
    setuptools' package-dir, so the tree is assembled from each subpackage's own folder; MLflow
    copies it under the model's `code/` and puts that on `sys.path` when it loads the model.
    """
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    with tempfile.TemporaryDirectory(prefix="closeprob_code_") as folder:
        root = Path(folder) / "closeprob"
        root.mkdir()
        for source in Path(closeprob.__file__).parent.glob("*.py"):
            shutil.copy2(source, root / source.name)
        for package in (closeprob.features, closeprob.models, closeprob.pipeline):
            name = package.__name__.rsplit(".", 1)[-1]
            shutil.copytree(Path(next(iter(package.__path__))), root / name, ignore=skip)
        yield root


def log_model(
    model: CloseModel,
    value_model: DealValueModel,
    example: pd.DataFrame,
    name: str,
    tags: dict[str, str],
) -> str:
    """Log the pyfunc to the active run and register it as a new version of `name`, with
    `tags` on the version (e.g. `trained_through`, `calibrated_on`)."""
    # Plain object columns: MLflow's schema has no pandas categorical or NA-aware string type.
    example = example.astype({c: object for c in model.categories})
    signature = infer_signature(example, model.predict_proba(example))
    # Self-contained: closeprob's code travels with the model (code_paths) and its
    # requirements are closeprob's, so it loads where closeprob is not installed.
    with closeprob_code() as code:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=CloseProbabilityModel(model, value_model),
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            code_paths=[str(code)],
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return version


def describe_version(name: str, version: str, description: str, tags: dict[str, str]) -> None:
    """A description and tags on a registered version, so that versions trained on different
    data tell themselves apart in the registry's UI."""
    client = MlflowClient()
    client.update_model_version(name, version, description=description)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def set_aliases(name: str, model_version: str, may_be_champion: bool = True) -> None:
    """The new version becomes `challenger`; also `champion` when there is none yet and it
    `may_be_champion`."""
    client = MlflowClient()
    client.set_registered_model_alias(name, CHALLENGER, model_version)
    if not may_be_champion:
        return
    try:
        client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        client.set_registered_model_alias(name, CHAMPION, model_version)


def alias_versions(name: str) -> dict[str, str]:
    """Alias → version of a registered model (empty when the model does not exist)."""
    try:
        return {k: str(v) for k, v in MlflowClient().get_registered_model(name).aliases.items()}
    except MlflowException:
        return {}


def resolve_version(uri: str) -> str:
    """The registry version a `models:/name@alias` or `models:/name/N` URI points at, else the
    URI itself (a run's model has no version)."""
    if not uri.startswith("models:/"):
        return uri
    name_part = uri.removeprefix("models:/")
    client = MlflowClient()
    if "@" in name_part:
        name, alias = name_part.split("@", 1)
        return str(client.get_model_version_by_alias(name, alias).version)
    return name_part.rsplit("/", 1)[-1]


@contextmanager
def legacy_module_names() -> Iterator[None]:
    """While loading, the pre-namespace module names resolve to today's modules, so models
    pickled by closeprob 0.1 unpickle. Names a user's session already holds (their own
    `models.py`) are left alone except for the exact submodules a pickle names."""
    added = []
    for old, new in LEGACY_MODULES.items():
        if old not in sys.modules or "." in old:
            previous = sys.modules.get(old)
            sys.modules[old] = import_module(new)
            added.append((old, previous))
    try:
        yield
    finally:
        for old, previous in reversed(added):
            if previous is None:
                sys.modules.pop(old, None)
            else:
                sys.modules[old] = previous


def load_registered_model(uri: str) -> LoadedModel:
    """The classifier and value estimator behind any MLflow model URI; a clear error if absent."""
    mlflow.set_tracking_uri(tracking_uri())
    try:
        with legacy_module_names():
            pyfunc = mlflow.pyfunc.load_model(uri)
        version = resolve_version(uri)
    except (MlflowException, OSError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelNotFoundError(
            f"model {uri!r} could not be loaded from {tracking_uri()} ({first_line}); "
            "run `make train` first, or pass --model with an existing URI "
            "(models:/close-probability@champion, models:/close-probability/3, runs:/<id>/model)"
        ) from None
    wrapper = pyfunc.unwrap_python_model()
    if not isinstance(wrapper, CloseProbabilityModel):
        raise ModelNotFoundError(f"model {uri!r} is not a closeprob close-probability model")
    value_model = getattr(wrapper, "value_model", None)  # versions logged before it existed
    return LoadedModel(close=wrapper.model, value=value_model, uri=uri, version=version)


def check_model_matches(model: CloseModel, deals: pd.DataFrame, source: str) -> None:
    """The data carry every column the model's features are built from."""
    needed = [*model.spec.attributes, *model.spec.history_keys]
    missing = [c for c in needed if c not in deals.columns]
    if missing:
        raise DataContractError(
            f"{source}: the model was trained with columns {missing} that this deals table lacks; "
            "score data with the same columns as the training data, or retrain on this data"
        )


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
    value = row_values(dataset.deals, data.features["deal_id"], result.value_model)[rows.to_numpy()]
    policy = PolicyScores("deployed", p_close, expected_values(p_close, value))
    # The comparison rows hold `holdout_share` of each week's deals: a queue as deep in
    # proportion, or value captured would be near 1 for every model.
    capacity = max(1, round(config.evaluation.capacity * config.calibration.holdout_share))
    metrics = rows_metrics(data, rows, policy, value, capacity)
    return {f"comparison_{k}": v for k, v in metrics.items()}


def champion_metrics(result: TrainingResult, dataset: Dataset, config: Config) -> dict[str, float]:
    """The champion's metrics on the challenger's comparison rows."""
    champion = load_registered_model(f"models:/{config.registered_model}@{CHAMPION}")
    check_model_matches(champion.close, dataset.deals, str(config.data.deals))
    return comparison_metrics(champion.close, result, dataset, config)


def challenge_champion(
    result: TrainingResult,
    dataset: Dataset,
    config: Config,
    run_id: str,
    version: str,
    implausible: str | None,
    comparison: dict[str, float],
) -> Decision:
    """Compare the new deployed version with the champion on the same comparison rows (recent
    rows of deals held out of the new fit by a stable hash, so held out of every version's
    fit that used the same window); promote by the rule. `comparison` holds the new model's
    `comparison_*` metrics. A model whose test figures are too good to believe
    (`implausible`) is never promoted.

    The decision, both figures and the reason are logged to the training run.
    """
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    current = alias_versions(config.registered_model).get(CHAMPION)
    if implausible is not None:
        decision = Decision(False, implausible)
        client.set_tag(run_id, "implausible", implausible)
        client.set_model_version_tag(config.registered_model, version, "implausible", implausible)
    elif current == version:
        decision = Decision(True, "no champion before: the first model becomes champion")
    else:
        try:
            old = champion_metrics(result, dataset, config)
        except CloseprobError as exc:
            decision = Decision(False, f"champion version {current} cannot score this data ({exc})")
        else:
            primary = "comparison_" + config.evaluation.primary_metric.removeprefix("test_")
            decision = decide_promotion(
                comparison,
                old,
                primary,
                config.evaluation.log_loss_tolerance,
                "comparison_log_loss",
            )
            client.log_metric(run_id, f"champion_{primary}", old[primary])
            client.log_metric(run_id, "champion_comparison_log_loss", old["comparison_log_loss"])
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
    except MlflowException:
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
    except MlflowException:
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


def run_promote(config: Config, version: str | None, rollback: bool) -> None:
    """The `promote` job: champion by hand, or back to the previous one."""
    name = config.registered_model
    if rollback:
        current, previous = rollback_champion(name)
        log.info(f"{name}: champion rolled back from version {current} to {previous}")
    elif version is not None:
        before = promote_version(name, version)
        log.info(f"{name}: champion is now version {version} (was {before or 'none'})")
