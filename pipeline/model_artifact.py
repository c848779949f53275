"""The model's files: what a registered closeprob model holds, written and read without pickle,
and the sha256 of each file, checked before anything is read.

A model folder (what MLflow stores) holds, beside MLflow's own files:
- `artifacts/closeprob/model.json`: the feature spec, column order, category levels, the
  calibrator, the blend weight and the logistic part, as numbers;
- `artifacts/closeprob/booster.txt`: the booster, LightGBM's own model text;
- `artifacts/closeprob/value.json` (+ `value_booster.txt` when it has a regressor): the
  deal-value estimator;
- `artifacts/closeprob/parts/<name>.json`: extra JSON documents that travel with the model,
  each checksummed like the rest; `health_reference.json` is the classifier's health
  reference (`models/health.py`, `CloseModel.reference`).

closeprob reads these files itself; it never runs `mlflow.pyfunc.load_model` and never imports
anything from a model folder. `pipeline/pyfunc_model.py` is the pyfunc MLflow runs for anyone
else who loads the model.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from closeprob.models.classifier import CloseModel
from closeprob.models.native import (
    booster_text,
    close_model_document,
    close_model_from_document,
    value_model_document,
    value_model_from_document,
)
from closeprob.models.value import DealValueModel
from closeprob.pipeline.errors import ModelNotFoundError

FORMAT = "closeprob-native/1"
FORMAT_KEY = "closeprob_format"  # MLmodel metadata: which format the files are in
FILES_KEY = "closeprob_files"  # MLmodel metadata: sha256 of the files closeprob reads
DIGESTS_TAG = "closeprob.sha256"  # registry version tag: sha256 of every file of the model
ARTIFACT = "closeprob"  # the pyfunc's artifact name, and its folder under artifacts/
ARTIFACT_FOLDER = f"artifacts/{ARTIFACT}"
# Written by MLflow into the folder a `models:/` URI is downloaded to, after registration.
DOWNLOAD_ONLY = {"registered_model_meta"}
PART_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
HEALTH_REFERENCE = "health_reference"  # the part that holds CloseModel.reference


class ModelIntegrityError(ModelNotFoundError):
    """A model file is missing, changed or added after the model was registered."""


@dataclass(frozen=True)
class NativeModel:
    """What a model folder holds: the classifier, its value estimator, extra JSON parts."""

    close: CloseModel
    value: DealValueModel | None
    parts: dict[str, Any] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every file below `root`, by path relative to it ('/'-separated), sorted."""
    return {
        path.relative_to(root).as_posix(): sha256_of(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name not in DOWNLOAD_ONLY
    }


def write_model_files(
    folder: Path,
    close: CloseModel,
    value: DealValueModel | None,
    parts: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The native files of a model into `folder` (created); their sha256 by name. The
    classifier's health reference, if it has one, is the part `health_reference`."""
    folder.mkdir(parents=True)
    if close.reference is not None:
        parts = {HEALTH_REFERENCE: close.reference} | dict(parts or {})
    _write_json(folder / "model.json", close_model_document(close))
    (folder / "booster.txt").write_text(booster_text(close.booster), encoding="utf-8")
    if value is not None:
        _write_json(folder / "value.json", value_model_document(value))
        if value.regressor is not None:
            text = booster_text(value.regressor)
            (folder / "value_booster.txt").write_text(text, encoding="utf-8")
    for name, document in (parts or {}).items():
        if not PART_NAME.match(name):
            raise ValueError(f"model part name {name!r} is not a lower-case identifier")
        (folder / "parts").mkdir(exist_ok=True)
        _write_json(folder / "parts" / f"{name}.json", document)
    return file_digests(folder)


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, allow_nan=False, indent=1), encoding="utf-8")


def read_model_files(folder: Path, uri: str = "") -> NativeModel:
    """The model in `folder` (the `write_model_files` layout), checksums already checked."""
    where = uri or str(folder)
    try:
        close = close_model_from_document(
            _read_json(folder / "model.json"), (folder / "booster.txt").read_text("utf-8")
        )
        value = None
        if (folder / "value.json").is_file():
            regressor_file = folder / "value_booster.txt"
            regressor = regressor_file.read_text("utf-8") if regressor_file.is_file() else None
            value = value_model_from_document(_read_json(folder / "value.json"), regressor)
        parts_folder = folder / "parts"
        parts = {
            path.stem: _read_json(path)
            for path in (sorted(parts_folder.glob("*.json")) if parts_folder.is_dir() else [])
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(
            f"model {where!r}: its files are not a readable closeprob model "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "register the model again with this closeprob"
        ) from None
    reference = parts.pop(HEALTH_REFERENCE, None)
    return NativeModel(replace(close, reference=reference), value, parts)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def check_digests(root: Path, expected: dict[str, str], uri: str, below: str = "") -> None:
    """Every file in `expected` is present below `root` with that sha256, and no other file
    is (below `below`, when only that folder's files were recorded); else the first offending
    file, named."""
    actual = file_digests(root)
    for path, digest in sorted(expected.items()):
        found = actual.get(path)
        if found is None:
            _refuse(uri, f"{path} is missing (it was registered with the model)")
        if found != digest:
            _refuse(
                uri,
                f"{path} was modified after registration (sha256 {found[:12]}…, registered "
                f"{digest[:12]}…)",
            )
    added = [p for p in actual if p not in expected and p.startswith(below)]
    if added:
        _refuse(uri, f"{added[0]} was added after registration")


def _refuse(uri: str, why: str) -> NoReturn:
    raise ModelIntegrityError(
        f"model {uri!r}: {why}; it was not loaded. Restore the model's files, or train and "
        "register it again"
    )


def expected_digests(meta: dict[str, Any], registered: str | None) -> tuple[dict[str, str], str]:
    """The checksums to check a model folder against, and the folder they cover: every file,
    from the registry version's tag when there is one; else the files closeprob reads, from
    the MLmodel metadata (a run's model or a folder that was never registered)."""
    if registered is not None:
        return {str(k): str(v) for k, v in json.loads(registered).items()}, ""
    recorded = (meta.get("metadata") or {}).get(FILES_KEY)
    if not isinstance(recorded, dict) or not recorded:
        raise ModelIntegrityError(
            f"its MLmodel metadata records no checksums ({FILES_KEY}); it was not loaded. "
            "Load it through the registry (models:/NAME/N), or register it again"
        )
    return {str(k): str(v) for k, v in recorded.items()}, ARTIFACT_FOLDER + "/"
