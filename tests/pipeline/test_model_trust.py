"""The trust boundary: before anything is unpickled, a model must be a closeprob pyfunc whose
pickle names only allowed globals. A pickle that would run a shell command is refused without
running it; a plain scikit-learn model gets the not-a-closeprob-model message."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from closeprob.features.spec import FeatureSpec
from closeprob.models.baselines import fit_logistic
from closeprob.models.training import calibrate_booster, fit_fixed_trees
from closeprob.pipeline.cli import main
from closeprob.pipeline.errors import ModelNotFoundError
from closeprob.pipeline.registry import load_registered_model
from closeprob.pipeline.trust import pickled_globals, unsafe_globals
from tests.conftest import write_small_crm

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "model_closeprob_0_1" / "model"


class RunsAShellCommand:
    """Unpickling this runs `touch <marker>`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_crm(tmp_path_factory.mktemp("crm"), 60)


def _model_with_pickle(folder: Path, payload: bytes, mark: bool) -> Path:
    """A copy of the closeprob 0.1 model folder with `payload` as its pickle; `mark` adds the
    closeprob metadata a forger would copy too."""
    model = folder / "model"
    shutil.copytree(LEGACY, model)
    (model / "python_model.pkl").write_bytes(payload)
    if mark:
        meta = yaml.safe_load((model / "MLmodel").read_text())
        meta["metadata"] = {"closeprob_version": "0.2.0"}
        (model / "MLmodel").write_text(yaml.safe_dump(meta))
    return model


@pytest.mark.parametrize("mark", [False, True], ids=["unmarked", "marked-by-a-forger"])
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_a_model_whose_pickle_runs_a_shell_command_is_refused_without_running_it(
    mark: bool,
    protocol: int,
    crm: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(RunsAShellCommand(marker), protocol=protocol)
    model = _model_with_pickle(tmp_path, payload, mark)
    out = tmp_path / "queue.csv"
    code = main(["predict", "--config", str(crm), "--model", str(model), "--out", str(out)])
    assert code == 2
    error = capsys.readouterr().err
    assert "is not a closeprob close-probability model" in error
    assert "posix.system" in error or "os.system" in error
    assert "a model URI is code" in error
    assert not marker.exists(), "the pickled shell command ran"
    assert not out.exists()


def test_a_plain_sklearn_model_is_refused_with_the_not_a_closeprob_model_message(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "sklearn-model"
    mlflow.sklearn.save_model(LogisticRegression().fit([[0], [1]], [0, 1]), str(model))
    code = main(["predict", "--config", str(crm), "--model", str(model)])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    assert "is not a closeprob close-probability model (it is a python_function/sklearn" in error


def test_a_folder_without_mlmodel_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="it has no MLmodel file"):
        load_registered_model(str(tmp_path))


def test_the_closeprob_0_1_pickle_names_only_allowed_globals() -> None:
    data = (LEGACY / "python_model.pkl").read_bytes()
    names = pickled_globals(data)
    assert ("pipeline.pyfunc", "CloseProbabilityModel") in names
    assert unsafe_globals(data) == []


def test_a_model_blended_with_a_logistic_part_pickles_with_only_allowed_globals() -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(
        {
            "a": rng.normal(size=300),
            "kind": pd.Categorical(rng.choice(["x", "y"], size=300), categories=["x", "y"]),
        }
    )
    y = pd.Series((rng.random(300) < 1 / (1 + np.exp(-x["a"]))).astype(int))
    params = {"num_leaves": 3, "min_child_samples": 20, "num_threads": 1}
    booster = fit_fixed_trees(x[:200], y[:200], params, 10, seed=1)
    linear = fit_logistic(x[:200], y[:200], ["kind"], seed=1)
    categories = {"kind": ["x", "y"]}
    model = calibrate_booster(
        booster, x[200:], y[200:], "sigmoid", FeatureSpec(()), categories, linear, 0.5
    )
    assert model.linear is not None
    assert unsafe_globals(pickle.dumps(model)) == []


@pytest.mark.parametrize(
    "target",
    [
        ("builtins", "eval"),
        ("builtins", "getattr"),
        ("subprocess", "Popen"),
        ("os", "system"),
        ("numpy", "load"),
        ("pandas", "read_pickle"),
        ("numpy", "memmap"),
        ("models", "anything"),  # a generic name would import the working folder's models.py
        ("closeprob.pipeline.runs", "git_commit"),  # a closeprob function, not a class
    ],
)
def test_globals_outside_the_allow_list_are_refused(target: tuple[str, str]) -> None:
    module, name = target
    payload = f"c{module}\n{name}\n(tR.".encode()  # protocol 0: GLOBAL, call with no args
    assert unsafe_globals(payload) == [f"{module}.{name}"]


def test_a_stack_global_whose_names_the_scan_cannot_resolve_is_refused() -> None:
    # Protocol 4: module and name built on the stack by other means than two string pushes.
    payload = b"\x80\x04" + b"\x8c\x02os" + b"\x8c\x06system" + b"\x86" + b"\x93" + b"."
    assert unsafe_globals(payload)[0].startswith("<unresolved")


@given(st.binary(max_size=64))
def test_the_scan_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    assert isinstance(unsafe_globals(data), list)


def test_a_model_whose_code_folder_holds_more_than_closeprob_is_refused_before_loading(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow puts a model's code folder first on sys.path: a stray module there would shadow
    any module imported after the load."""
    marker = tmp_path / "pwned"
    model = tmp_path / "model"
    shutil.copytree(LEGACY, model)
    meta = yaml.safe_load((model / "MLmodel").read_text())
    meta["flavors"]["python_function"]["code"] = "code"
    (model / "MLmodel").write_text(yaml.safe_dump(meta))
    (model / "code" / "closeprob").mkdir(parents=True)
    (model / "code" / "closeprob" / "__init__.py").write_text("")
    (model / "code" / "shap.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    out = tmp_path / "queue.csv"
    code = main(["predict", "--config", str(crm), "--model", str(model), "--out", str(out)])
    assert code == 2
    error = capsys.readouterr().err
    assert "its code folder holds shap.py, not only closeprob's code" in error
    assert not marker.exists()
    assert not out.exists()
