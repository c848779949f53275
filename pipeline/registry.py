"""The registered model: how it is logged (native files, `model_artifact.py`), registered with
the sha256 of every file, loaded (checked, never unpickled or imported), and judged against the
champion after training. Champion history, promotion and rollback are in `champion.py`; run
logging is in `runs.py`.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import requires
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from packaging.requirements import Requirement

import closeprob.features
import closeprob.models
import closeprob.pipeline
from closeprob.models.classifier import CloseModel
from closeprob.models.value import DealValueModel
from closeprob.pipeline.errors import CloseprobError, DataContractError, ModelNotFoundError
from closeprob.pipeline.model_artifact import (
    ARTIFACT,
    ARTIFACT_FOLDER,
    DIGESTS_TAG,
    FILES_KEY,
    FORMAT,
    FORMAT_KEY,
    NativeModel,
    check_digests,
    expected_digests,
    file_digests,
    read_model_files,
    write_model_files,
)
from closeprob.pipeline.store import tracking_uri

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
# MLflow's error codes for "no such model, version or alias" (an unknown alias is
# INVALID_PARAMETER_VALUE); any other code (permission, a failing store) is an error.
ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}

CLOSEPROB_MARK = "closeprob_version"  # MLmodel metadata: the closeprob that logged the model
PYFUNC_MODEL = Path(__file__).with_name("pyfunc_model.py")  # the pyfunc, logged as code


@dataclass(frozen=True)
class LoadedModel:
    """A registry model unwrapped: the classifier, its value estimator, where it came from."""

    close: CloseModel
    value: DealValueModel | None
    uri: str
    version: str
    parts: dict[str, Any] = field(default_factory=dict)


def _requirements() -> list[str]:
    """closeprob's own runtime dependencies (pyproject's, read from the installed metadata, so
    the list cannot fall behind), each pinned to the version that logged the model: the
    pyfunc rebuilds the model with closeprob's code, which the model carries."""
    names = []
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


@dataclass(frozen=True)
class LoggedModel:
    """A model logged to a run: its URI and the sha256 of each of its files."""

    uri: str
    digests: dict[str, str]


def log_model(
    model: CloseModel,
    value_model: DealValueModel | None,
    example: pd.DataFrame,
    parts: dict[str, Any] | None = None,
) -> LoggedModel:
    """Log the model to the active run as native files (`model_artifact.py`) and the pyfunc
    that reads them (`pyfunc_model.py`, logged as code: no pickle); its URI and the sha256 of
    every file it holds. Not registered here: `publish_version` does that, recording the
    checksums on the version."""
    # Plain object columns: MLflow's schema has no pandas categorical or NA-aware string type.
    example = example.astype({c: object for c in model.categories})
    signature = infer_signature(example, model.predict_proba(example))
    with tempfile.TemporaryDirectory(prefix="closeprob-model-") as folder:
        files = Path(folder) / ARTIFACT
        native = write_model_files(files, model, value_model, parts)
        metadata = {
            CLOSEPROB_MARK: package_version("closeprob"),
            FORMAT_KEY: FORMAT,
            FILES_KEY: {f"{ARTIFACT_FOLDER}/{k}": v for k, v in native.items()},
        }
        # closeprob's code travels with the model (code_paths) and its requirements are
        # closeprob's, so the pyfunc loads where closeprob is not installed.
        with closeprob_code() as code:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_MODEL),
                artifacts={ARTIFACT: str(files)},
                signature=signature,
                input_example=example,
                pip_requirements=_requirements(),
                code_paths=[str(code)],
                metadata=metadata,
            )
        logged = Path(folder) / "logged"
        mlflow.artifacts.download_artifacts(str(info.model_uri), dst_path=str(logged))
        return LoggedModel(str(info.model_uri), file_digests(logged))


def describe_version(name: str, version: str, description: str, tags: dict[str, str]) -> None:
    """A description and tags on a registered version, so that versions trained on different
    data tell themselves apart in the registry's UI."""
    client = MlflowClient()
    client.update_model_version(name, version, description=description)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def register_logged(logged: LoggedModel, name: str) -> str:
    """A new version of `name` for a logged model, created with the sha256 of every file in
    its tags (one write: a version never exists without them); its number."""
    tags = {DIGESTS_TAG: json.dumps(logged.digests, sort_keys=True)}
    return str(mlflow.register_model(logged.uri, name, tags=tags).version)


def alias_versions(name: str) -> dict[str, str]:
    """Alias → version of a registered model (empty when the model does not exist). Any other
    registry error (permission, a store that fails) is raised, never read as "no aliases"."""
    try:
        model = MlflowClient().get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise
    return {k: str(v) for k, v in model.aliases.items()}


def registered_name(uri: str, default: str = "close-probability") -> str:
    """The registered model's name in a `models:/NAME@alias` or `models:/NAME/version` URI."""
    if not uri.startswith("models:/"):
        return default
    return uri.removeprefix("models:/").split("@")[0].split("/")[0] or default


def load_registered_model(uri: str) -> LoadedModel:
    """The classifier and value estimator behind any MLflow model URI or model folder; a clear
    error if absent, not a closeprob model, registered by an earlier release, or changed
    since registration.

    A folder is read where it is (refused at once without an MLmodel file); any other URI is
    downloaded first (a model is a few MB). Every file's sha256 is checked before anything is
    read, then the JSON and LightGBM text are read: nothing from the model is imported or run.
    """
    mlflow.set_tracking_uri(tracking_uri())
    folder = model_folder(uri)
    if folder is not None:
        native = read_checked(folder, uri, None)
        return LoadedModel(native.close, native.value, uri, uri, native.parts)
    version, registered = registry_version(uri)
    source = f"models:/{registered_name(uri)}/{version}" if uri.startswith("models:/") else uri
    with tempfile.TemporaryDirectory(prefix="closeprob-model-") as folder_name:
        try:
            local = Path(mlflow.artifacts.download_artifacts(source, dst_path=folder_name))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise  # a registry or artifact store failure is not "no such model"
            raise _not_loadable(uri, exc) from None
        except OSError as exc:
            raise _not_loadable(uri, exc) from None
        native = read_checked(local, uri, registered)
    return LoadedModel(native.close, native.value, uri, version, native.parts)


def model_folder(uri: str) -> Path | None:
    """The folder of a path-like model URI (a plain path or file://), None for a URI MLflow
    resolves (models:/, runs:/, a remote store); refused before anything is copied when it is
    not a model folder."""
    if uri.startswith("file://"):
        path = Path(uri.removeprefix("file://"))
    elif "://" in uri or uri.startswith(("models:/", "runs:/")):
        return None
    else:
        path = Path(uri)
    if not path.exists():
        raise ModelNotFoundError(
            f"model {uri!r}: no such file or folder; pass --model a model URI "
            f"(models:/NAME@champion, models:/NAME/3, runs:/<id>/model) or a model folder"
        )
    if not (path / "MLmodel").is_file():
        raise ModelNotFoundError(
            f"model {uri!r} is not a model folder (it has no MLmodel file); nothing was "
            "copied. Pass --model a folder downloaded from the registry, or a model URI"
        )
    return path


def registry_version(uri: str) -> tuple[str, str | None]:
    """For a `models:/` URI: the version it points at and the checksums recorded on it; for
    any other URI: the URI itself and None. A registry error other than "does not exist" is
    raised as it is (never read as "no such model")."""
    if not uri.startswith("models:/"):
        return uri, None
    name_part = uri.removeprefix("models:/")
    client = MlflowClient()
    try:
        if "@" in name_part:
            name, alias = name_part.split("@", 1)
            found = client.get_model_version_by_alias(name, alias)
        else:
            name, _, number = name_part.rpartition("/")
            found = client.get_model_version(name, str(parse_version(number)))
    except MlflowException as exc:
        if exc.error_code not in ABSENT:
            raise
        raise _not_loadable(uri, exc) from None
    return str(found.version), found.tags.get(DIGESTS_TAG)


def read_checked(folder: Path, uri: str, registered: str | None) -> NativeModel:
    """The native model in a model folder, every recorded file's sha256 checked first: all
    files against the registry version's record when there is one (before the MLmodel file
    is even parsed), else closeprob's own files against the MLmodel metadata."""
    if registered is not None:
        expected, below = expected_digests({}, registered)
        check_digests(folder, expected, uri, below)
        _mlmodel(folder, uri)
    else:
        expected, below = expected_digests(_mlmodel(folder, uri), None)
        check_digests(folder, expected, uri, below)
    return read_model_files(folder / ARTIFACT_FOLDER, uri)


def _mlmodel(folder: Path, uri: str) -> dict[str, Any]:
    """The MLmodel file as data; refused unless it describes a native closeprob model."""
    if not (folder / "MLmodel").is_file():
        raise ModelNotFoundError(
            f"model {uri!r} has no MLmodel file (its files are gone from the artifact store, "
            "or it is not a model); it was not loaded"
        )
    try:
        meta = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelNotFoundError(
            f"model {uri!r} is not a closeprob model (its MLmodel file is unreadable: "
            f"{type(exc).__name__}); it was not loaded"
        ) from None
    meta = meta if isinstance(meta, dict) else {}
    metadata = meta.get("metadata") or {}
    if metadata.get(FORMAT_KEY) == FORMAT:
        return meta
    found = meta.get("flavors")
    flavors: dict[str, Any] = found if isinstance(found, dict) else {}
    pyfunc = flavors.get("python_function")
    if (
        isinstance(pyfunc, dict)
        and pyfunc.get("python_model")
        and set(flavors) == {"python_function"}
    ):
        release = metadata.get(CLOSEPROB_MARK) or "0.1"
        raise LegacyModelError(
            f"model {uri!r} was registered by an earlier closeprob release (a pickled "
            f"python_model, closeprob_version {release!r}), which this closeprob does not "
            "load (unpickling runs code). If you trust the registry it came from, rebuild it "
            f"once as a native model: `closeprob migrate-model {uri} --trust-pickle`, then "
            "promote the new version"
        )
    kinds = "/".join(sorted(flavors)) or "unknown"
    raise ModelNotFoundError(
        f"model {uri!r} is not a closeprob close-probability model (it is a {kinds} model); "
        "it was not loaded. Pass --model a model registered by `closeprob train`"
    )


class LegacyModelError(ModelNotFoundError):
    """A model registered by closeprob 0.1 or 0.2 (a pickle): `closeprob migrate-model`."""


def _not_loadable(uri: str, exc: BaseException) -> ModelNotFoundError:
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    name = registered_name(uri)
    return ModelNotFoundError(
        f"model {uri!r} could not be loaded from {tracking_uri()} ({first_line}); "
        "run `make train` first (with the same config or NAME), or pass --model with "
        f"an existing URI (models:/{name}@champion, models:/{name}/3, runs:/<id>/model)"
    )


def parse_version(text: str) -> int:
    """A registry version number as written by a user ('2', '02'); refused otherwise."""
    try:
        number = int(str(text).strip())
    except ValueError:
        number = 0
    if number < 1:
        raise CloseprobError(f"version {text!r} is not a registry version (a whole number ≥ 1)")
    return number


def check_model_matches(model: CloseModel, deals: pd.DataFrame, source: str) -> None:
    """The data carry every column the model's features are built from."""
    needed = [*model.spec.attributes, *model.spec.history_keys]
    missing = [c for c in needed if c not in deals.columns]
    if missing:
        raise DataContractError(
            f"{source}: the model was trained with columns {missing} that this deals table lacks; "
            "score data with the same columns as the training data, or retrain on this data"
        )
