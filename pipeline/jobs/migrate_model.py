"""`closeprob migrate-model URI --trust-pickle`: a model registered by an earlier closeprob (a
pickled pyfunc, 0.1 or 0.2) rebuilt once as a native model (`model_artifact.py`) and
registered as a new version. Unpickling runs whatever the pickle names, so it happens only
here and only with the flag that says the user trusts the registry the model came from.

One release of migration: the next release drops this command (docs/model-format.md).
"""

from __future__ import annotations

import logging
import pickle
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import yaml

from closeprob.features.spec import FeatureSpec
from closeprob.models.classifier import CloseModel, RawScoreCalibrator
from closeprob.models.linear import linear_part_from_pipeline
from closeprob.models.native import LEGACY_SPEC
from closeprob.models.value import DealValueModel
from closeprob.pipeline.errors import CloseprobError, ModelNotFoundError
from closeprob.pipeline.registry import LoggedModel, log_model, model_folder, register_logged
from closeprob.pipeline.runs import use_experiment
from closeprob.pipeline.store import tracked_run, tracking_uri

log = logging.getLogger(__name__)

# Top-level packages of the classes earlier releases pickled (0.1 had no namespace).
CLOSEPROB_PACKAGES = {"closeprob", "pipeline", "models", "features"}


class Pickled:
    """A closeprob object of an earlier release, kept as its pickled attributes (`state`):
    its class is never imported, so old class layouts never meet today's code."""

    kind = ""
    state: dict[str, Any]

    def __setstate__(self, state: Any) -> None:
        self.state = dict(state[0] if isinstance(state, tuple) else state)


class LegacyUnpickler(pickle.Unpickler):
    """Unpickles closeprob's own classes as `Pickled` holders named for the class; everything
    else (scikit-learn, LightGBM, numpy) as itself."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in CLOSEPROB_PACKAGES:
            return type(name, (Pickled,), {"kind": name})
        return super().find_class(module, name)


def unpickle_legacy(path: Path) -> tuple[CloseModel, DealValueModel | None]:
    with path.open("rb") as stream:
        wrapper = LegacyUnpickler(stream).load()
    if not isinstance(wrapper, Pickled) or wrapper.kind != "CloseProbabilityModel":
        raise ModelNotFoundError(f"{path}: not a pickled closeprob CloseProbabilityModel")
    close = close_model_from_state(wrapper.state["model"].state)
    value = wrapper.state.get("value_model")
    return close, None if value is None else value_model_from_state(value.state)


def close_model_from_state(state: dict[str, Any]) -> CloseModel:
    """A CloseModel from the attributes 0.1 (`calibrated`: a CalibratedClassifierCV) or 0.2
    (`calibrator`: a scikit-learn estimator on the raw score; `linear`: a pipeline) pickled."""
    categories = {k: list(v) for k, v in state["categories"].items()}
    weight = float(state.get("blend_weight", 1.0))
    linear = state.get("linear")
    part = None
    if linear is not None and weight < 1.0:
        part = linear_part_from_pipeline(linear, list(categories))
    if "calibrated" in state:
        (fitted,) = state["calibrated"].calibrated_classifiers_
        calibrator = calibrator_from_estimator(state["calibration_method"], fitted.calibrators[0])
    else:
        old = state["calibrator"].state
        calibrator = calibrator_from_estimator(old["method"], old["estimator"])
    return CloseModel(
        spec=spec_from_state(state["spec"].state),
        feature_names=list(state["feature_names"]),
        categories=categories,
        booster=state["booster"],
        calibrator=calibrator,
        calibration_method=state["calibration_method"],
        linear=part,
        blend_weight=weight if part is not None else 1.0,
        reference=state.get("reference"),
    )


def calibrator_from_estimator(method: str, estimator: Any) -> RawScoreCalibrator:
    """The numbers of a fitted calibrator: LogisticRegression (Platt on the raw score),
    scikit-learn's private _SigmoidCalibration (0.1: expit(−(a·raw + b))) or isotonic."""
    if hasattr(estimator, "a_") and hasattr(estimator, "b_"):
        return RawScoreCalibrator(
            method, slope=-float(estimator.a_), intercept=-float(estimator.b_)
        )
    if hasattr(estimator, "coef_"):
        slope, intercept = float(estimator.coef_[0, 0]), float(estimator.intercept_[0])
        return RawScoreCalibrator(method, slope=slope, intercept=intercept)
    x = tuple(float(v) for v in estimator.X_thresholds_)
    return RawScoreCalibrator(method, x=x, y=tuple(float(v) for v in estimator.y_thresholds_))


def spec_from_state(state: dict[str, Any]) -> FeatureSpec:
    values: dict[str, Any] = LEGACY_SPEC | {
        k: tuple(v) if isinstance(v, list) else v for k, v in state.items()
    }
    return FeatureSpec(**values)


def value_model_from_state(state: dict[str, Any]) -> DealValueModel:
    return DealValueModel(
        attributes=list(state["attributes"]),
        categories={k: list(v) for k, v in state["categories"].items()},
        regressor=state["regressor"],
        segment=state["segment"],
        segment_medians={str(k): float(v) for k, v in state["segment_medians"].items()},
        global_median=float(state["global_median"]),
    )


def example_rows(model: CloseModel) -> pd.DataFrame:
    """One row to log the model's signature with (earlier models carry no input example)."""
    return pd.DataFrame(
        {
            name: [model.categories[name][0] if model.categories.get(name) else None]
            if name in model.categories
            else [np.nan]
            for name in model.feature_names
        }
    )


def run_migrate_model(uri: str, trust_pickle: bool, name: str) -> str:
    """The `migrate-model` job: the new version's number."""

    if not trust_pickle:
        raise CloseprobError(
            f"migrate-model unpickles {uri!r}, which runs whatever code its pickle names; "
            "pass --trust-pickle only if you trust the registry it came from"
        )
    mlflow.set_tracking_uri(tracking_uri())
    with tempfile.TemporaryDirectory(prefix="closeprob-migrate-") as folder_name:
        folder = model_folder(uri)
        if folder is None:
            folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=folder_name))
        close, value = unpickle_legacy(_pickle_path(folder, uri))
    use_experiment(name)
    logged: list[LoggedModel] = []
    versions: list[str] = []
    with tracked_run("migrate-model", lambda: versions.append(register_logged(logged[0], name))):
        mlflow.set_tag("migrated_from", uri)
        logged.append(log_model(close, value, example_rows(close)))
    version = versions[0]
    log.info(
        f"{uri}: rebuilt as a native model and registered as {name!r} version {version}; "
        f"make it champion with `closeprob promote --version {version}`"
    )
    return version


def _pickle_path(folder: Path, uri: str) -> Path:
    meta = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8")) or {}
    pyfunc = (meta.get("flavors") or {}).get("python_function") or {}
    pickled = pyfunc.get("python_model")
    if not isinstance(pickled, str) or not (folder / pickled).is_file():
        raise ModelNotFoundError(
            f"model {uri!r} has no pickled python_model: it is not a model of an earlier "
            "closeprob (a native model needs no migration)"
        )
    return folder / pickled
