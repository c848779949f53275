"""The model as files: no pickle anywhere, every file's sha256 recorded at registration and
checked at load (a changed byte is exit 2 naming the file), nothing from the model folder
imported or run by closeprob, a folder that is not a model refused before anything is copied."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from closeprob.pipeline.cli import main
from closeprob.pipeline.errors import ModelNotFoundError
from closeprob.pipeline.model_artifact import (
    DIGESTS_TAG,
    ModelIntegrityError,
    read_model_files,
    write_model_files,
)
from closeprob.pipeline.registry import load_registered_model
from tests.conftest import store_uri, write_small_crm
from tests.pipeline.native_models import MODEL, log_tiny_model, tiny_model

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "model_closeprob_0_1" / "model"
HEALTH = {"trained_through": "2024-10-01", "bins": {"a": [-1.0, 0.0, 1.0]}, "shares": [0.5, 0.5]}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with version 1 of the tiny model (with an extra JSON part), made once."""
    folder = tmp_path_factory.mktemp("artifact")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store_uri(folder))
        patch.setenv("MLFLOW_REGISTRY_URI", store_uri(folder))
        patch.chdir(folder)
        mlflow.set_tracking_uri(store_uri(folder))
        from closeprob.pipeline.registry import register_logged

        register_logged(log_tiny_model({"health": HEALTH}), MODEL)
    return folder / "mlflow.db"


@pytest.fixture()
def client(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MlflowClient]:
    """This test's own copy of the template store."""
    with (
        closing(sqlite3.connect(template)) as source,
        closing(sqlite3.connect(tmp_path / "mlflow.db")) as copy,
    ):
        source.backup(copy)
    uri = store_uri(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_crm(tmp_path_factory.mktemp("crm"), 60)


def _registered_copy(client: MlflowClient, folder: Path) -> tuple[str, Path]:
    """Version 1's files copied to `folder` and registered again as a new version, with the
    checksums recorded at its registration: the copy is this test's to damage."""
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL}/1", dst_path=str(folder)))
    tags = {DIGESTS_TAG: client.get_model_version(MODEL, "1").tags[DIGESTS_TAG]}
    version = client.create_model_version(MODEL, source=str(local), tags=tags).version
    return f"models:/{MODEL}/{version}", local


def test_the_registered_models_files_hold_no_pickle_and_carry_the_extra_part(
    client: MlflowClient, tmp_path: Path
) -> None:
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL}/1", dst_path=str(tmp_path)))
    files = [p for p in local.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in {".pkl", ".pickle", ".joblib", ".cloudpickle"}]
    assert not [p for p in files if p.read_bytes()[:1] == b"\x80"], "a file starts like a pickle"
    assert (local / "artifacts" / "closeprob" / "booster.txt").read_text().startswith("tree\n")
    recorded = json.loads(client.get_model_version(MODEL, "1").tags[DIGESTS_TAG])
    assert "artifacts/closeprob/parts/health.json" in recorded
    assert "MLmodel" in recorded and "pyfunc_model.py" in recorded
    assert load_registered_model(f"models:/{MODEL}/1").parts == {"health": HEALTH}


def test_a_flipped_byte_in_the_booster_of_a_registered_model_is_exit_2_naming_the_file(
    client: MlflowClient, crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri, local = _registered_copy(client, tmp_path / "copy")
    booster = local / "artifacts" / "closeprob" / "booster.txt"
    data = bytearray(booster.read_bytes())
    data[len(data) // 2] ^= 0x01
    booster.write_bytes(bytes(data))
    out = tmp_path / "queue.csv"
    assert main(["predict", "--config", str(crm), "--model", uri, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    assert "artifacts/closeprob/booster.txt was modified after registration" in error
    assert not out.exists()


def test_a_flipped_byte_in_any_file_of_a_registered_model_is_refused_naming_it(
    client: MlflowClient, tmp_path: Path
) -> None:
    uri, local = _registered_copy(client, tmp_path / "copy")
    files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    files = [f for f in files if f != "registered_model_meta"]
    code = [f for f in files if f.startswith("code/")]
    # Every file of the model but the code package, of which two modules (all are recorded).
    for name in [f for f in files if not f.startswith("code/")] + code[:2]:
        path = local / name
        original = path.read_bytes()
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 0x01]))
        with pytest.raises(
            ModelIntegrityError, match=re.escape(f"{name} was modified after registration")
        ):
            load_registered_model(uri)
        path.write_bytes(original)
    load_registered_model(uri)  # restored: loads


def test_a_file_added_to_or_removed_from_a_registered_model_is_refused(
    client: MlflowClient, tmp_path: Path
) -> None:
    uri, local = _registered_copy(client, tmp_path / "copy")
    (local / "code" / "shap.py").write_text("raise SystemExit('ran')\n")
    with pytest.raises(
        ModelIntegrityError, match=re.escape("code/shap.py was added after registration")
    ):
        load_registered_model(uri)
    (local / "code" / "shap.py").unlink()
    (local / "artifacts" / "closeprob" / "value.json").unlink()
    with pytest.raises(ModelIntegrityError, match=re.escape("value.json is missing")):
        load_registered_model(uri)


def test_a_model_folder_is_checked_against_its_mlmodel_record_and_its_code_never_runs(
    client: MlflowClient, tmp_path: Path
) -> None:
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL}/1", dst_path=str(tmp_path)))
    marker = tmp_path / "ran"
    (local / "pyfunc_model.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (local / "code" / "closeprob" / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
    )
    loaded = load_registered_model(str(local))
    assert not marker.exists(), "closeprob ran code from the model folder"
    assert loaded.parts == {"health": HEALTH}
    model_json = local / "artifacts" / "closeprob" / "model.json"
    model_json.write_text(
        model_json.read_text().replace('"blend_weight": 1.0', '"blend_weight": 0.5')
    )
    with pytest.raises(
        ModelIntegrityError, match=re.escape("model.json was modified after registration")
    ):
        load_registered_model(str(local))


def test_native_files_read_back_score_exactly_as_the_model_in_memory(tmp_path: Path) -> None:
    model, value, rows = tiny_model()
    digests = write_model_files(tmp_path / "files", model, value, {"health": HEALTH})
    assert set(digests) == {"model.json", "booster.txt", "value.json", "parts/health.json"}
    again = read_model_files(tmp_path / "files")
    np.testing.assert_allclose(
        again.close.predict_proba(rows), model.predict_proba(rows), rtol=0, atol=1e-12
    )
    assert again.parts == {"health": HEALTH}


def test_a_part_name_that_is_not_an_identifier_is_refused(tmp_path: Path) -> None:
    model, value, _ = tiny_model()
    with pytest.raises(
        ValueError, match=re.escape("model part name '../x' is not a lower-case identifier")
    ):
        write_model_files(tmp_path / "files", model, value, {"../x": {}})


def test_a_folder_without_mlmodel_is_refused_before_anything_is_copied(
    crm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "big-folder"
    folder.mkdir()
    with (folder / "data.bin").open("wb") as big:
        big.truncate(2**30)  # 1 GiB (sparse): copying it would take minutes

    def no_copy(*args: object, **kwargs: object) -> None:
        raise AssertionError("the folder was copied")

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", no_copy)
    monkeypatch.setattr(shutil, "copytree", no_copy)
    out = tmp_path / "queue.csv"
    assert main(["predict", "--config", str(crm), "--model", str(folder), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"model {str(folder)!r} is not a model folder (it has no MLmodel file)" in error
    assert "nothing was copied" in error


def test_a_plain_sklearn_model_is_refused_with_the_not_a_closeprob_model_message(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "sklearn-model"
    mlflow.sklearn.save_model(LogisticRegression().fit([[0], [1]], [0, 1]), str(model))
    assert main(["predict", "--config", str(crm), "--model", str(model)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    assert "is not a closeprob close-probability model (it is a python_function/sklearn" in error


class RunsAShellCommand:
    """Unpickling this runs `touch <marker>`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_model_is_never_unpickled_by_predict(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    model = tmp_path / "model"
    shutil.copytree(LEGACY, model)
    (model / "python_model.pkl").write_bytes(pickle.dumps(RunsAShellCommand(marker)))
    out = tmp_path / "queue.csv"
    assert main(["predict", "--config", str(crm), "--model", str(model), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "registered by an earlier closeprob release" in error
    assert f"closeprob migrate-model {model} --trust-pickle" in error
    assert not marker.exists(), "the pickled shell command ran"
    assert not out.exists()


def test_an_unreadable_model_file_with_matching_checksums_is_one_clear_error(
    tmp_path: Path,
) -> None:
    model, value, _ = tiny_model()
    write_model_files(tmp_path / "files", model, value)
    (tmp_path / "files" / "model.json").write_text("{}")
    with pytest.raises(
        ModelNotFoundError, match=re.escape("its files are not a readable closeprob model")
    ):
        read_model_files(tmp_path / "files", "models:/x/1")


def test_the_health_reference_travels_as_its_own_checksummed_file(tmp_path: Path) -> None:
    model, value, _ = tiny_model()
    reference = {"schema": 1, "trained_through": "2024-10-01", "bins": {"a": [0.0, 1.0]}}
    digests = write_model_files(tmp_path / "files", replace(model, reference=reference), value)
    assert "parts/health_reference.json" in digests
    again = read_model_files(tmp_path / "files")
    assert again.close.reference == reference
    assert again.parts == {}


def test_check_says_a_champion_that_cannot_be_loaded_is_unloadable_naming_the_file(
    client: MlflowClient, crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri, local = _registered_copy(client, tmp_path / "copy")
    version = uri.rsplit("/", 1)[1]
    client.set_registered_model_alias(MODEL, "champion", version)
    booster = local / "artifacts" / "closeprob" / "booster.txt"
    booster.write_bytes(booster.read_bytes() + b"\n")

    assert main(["check", "--config", str(crm), "--for", "predict"]) == 2
    out = capsys.readouterr().out
    assert "no champion" not in out
    assert (
        f"error: champion models:/{MODEL}@champion (version {version}) cannot be loaded: "
        f"model 'models:/{MODEL}@champion': artifacts/closeprob/booster.txt was modified after "
        "registration (sha256 "
    ) in out
    assert f"version {version} exists but cannot be loaded" in out
    # For train it is a warning: training promotes a healthy new model over it.
    main(["check", "--config", str(crm), "--for", "train"])
    assert "warning: champion" in capsys.readouterr().out
