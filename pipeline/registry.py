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
from closeprob.pipeline.store import prepare_store, tracking_uri
from closeprob.pipeline.train import TrainingResult
from closeprob.pipeline.trust import CLOSEPROB_MARK, check_closeprob_model

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


def log_model(model: CloseModel, value_model: DealValueModel, example: pd.DataFrame) -> str:
    """Log the pyfunc to the active run, marked as closeprob's in its MLmodel metadata; its
    model URI. Not registered here: `publish_version` does that when the run publishes."""
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
            metadata={CLOSEPROB_MARK: package_version("closeprob")},
        )
    return str(info.model_uri)


def describe_version(name: str, version: str, description: str, tags: dict[str, str]) -> None:
    """A description and tags on a registered version, so that versions trained on different
    data tell themselves apart in the registry's UI."""
    client = MlflowClient()
    client.update_model_version(name, version, description=description)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def publish_version(
    model_uri: str,
    name: str,
    challenge: Challenge,
    notes: tuple[str, dict[str, str]] | None = None,
) -> str:
    """The train job's only registry writes, made once everything that can fail has been
    computed: register the logged model as a new version of `name` (with its `notes`,
    description and tags), make it `challenger`, and `champion` when the rule promoted it. Any
    kill between two writes leaves aliases that point at whole versions and a champion history
    that rolls back correctly."""
    version = str(mlflow.register_model(model_uri, name).version)
    if notes is not None:
        describe_version(name, version, *notes)
    MlflowClient().set_registered_model_alias(name, CHALLENGER, version)
    if challenge.decision.promote:
        set_champion(name, version)
    return version


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


def registered_name(uri: str, default: str = "close-probability") -> str:
    """The registered model's name in a `models:/NAME@alias` or `models:/NAME/version` URI."""
    if not uri.startswith("models:/"):
        return default
    return uri.removeprefix("models:/").split("@")[0].split("/")[0] or default


def load_registered_model(uri: str) -> LoadedModel:
    """The classifier and value estimator behind any MLflow model URI; a clear error if absent.

    The model's files are fetched first and checked (`trust.check_closeprob_model`): nothing
    is unpickled unless it is a closeprob model whose pickle names only allowed globals.
    """
    mlflow.set_tracking_uri(tracking_uri())
    with tempfile.TemporaryDirectory(prefix="closeprob-model-") as folder:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder))
            check_closeprob_model(local, uri)
            with legacy_module_names():
                pyfunc = mlflow.pyfunc.load_model(str(local))
            version = resolve_version(uri)
        except (MlflowException, OSError) as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            name = registered_name(uri)
            raise ModelNotFoundError(
                f"model {uri!r} could not be loaded from {tracking_uri()} ({first_line}); "
                "run `make train` first (with the same config or NAME), or pass --model with "
                f"an existing URI (models:/{name}@champion, models:/{name}/3, runs:/<id>/model)"
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


@dataclass(frozen=True)
class Challenge:
    """The champion/challenger decision for a new model, the champion's figures, and why the
    model is implausible (never promoted), if it is."""

    decision: Decision
    champion_metrics: dict[str, float]
    implausible: str | None = None


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


def set_champion(name: str, version: str) -> str | None:
    """Point `champion` at `version`, remembering the one it replaces for --rollback.

    The history is a tag on the new champion's version, written before the alias moves: a kill
    between the two leaves the alias, and the tag of the version it points at, as they were.
    """
    client = MlflowClient()
    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise CloseprobError(f"registered model {name!r} has no version {version!r}") from None
    previous = alias_versions(name).get(CHAMPION)
    if previous is not None and previous != version:
        client.set_model_version_tag(name, version, PREVIOUS_CHAMPION_TAG, previous)
    client.set_registered_model_alias(name, CHAMPION, version)
    return previous


def rollback_champion(name: str) -> tuple[str, str]:
    """Point `champion` back at the version it replaced last; (from, to)."""
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        raise CloseprobError(
            f"registered model {name!r} not found; run `make train` first"
        ) from None
    current = {k: str(v) for k, v in model.aliases.items()}.get(CHAMPION)
    if current is None:
        raise CloseprobError(f"{name!r} has no champion to roll back from")
    previous = client.get_model_version(name, current).tags.get(PREVIOUS_CHAMPION_TAG)
    if previous is None:  # closeprob 0.1 kept the history on the registered model
        legacy = model.tags.get(PREVIOUS_CHAMPION_TAG)
        previous = legacy if legacy != current else None
    if previous is None:
        raise CloseprobError(f"{name!r} has no earlier champion to roll back to")
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
