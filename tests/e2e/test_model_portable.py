"""A registered model loads and scores where closeprob is not installed: a fresh virtualenv
built only from the model's own requirements.txt (pip's cache makes the build quick). What such
an environment needs: the model's requirements (closeprob's dependencies, pinned) and the
closeprob code it carries (MLflow `code_paths`), which its pyfunc (`pyfunc_model.py`, logged as
code) uses to read the JSON and LightGBM text in `load_context`. Nothing is unpickled."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from closeprob.pipeline.registry import load_registered_model
from tests.conftest import outside_env, store_uri, use_store

SCORE_SCRIPT = """
import importlib.util, sys
import pandas as pd
assert importlib.util.find_spec("closeprob") is None, "closeprob is importable before loading"
import mlflow.pyfunc
model = mlflow.pyfunc.load_model(sys.argv[1])
rows = pd.read_pickle(sys.argv[2])
pd.DataFrame({"p_close": model.predict(rows)}).to_parquet(sys.argv[3])
print(sys.modules["closeprob"].__file__)
"""


def input_example(model_dir: Path) -> pd.DataFrame:
    """The rows logged with the model, categorical columns as plain objects (as logged)."""
    rows = pd.read_json(model_dir / "input_example.json", orient="split")
    numeric = [c for c in rows.columns if pd.api.types.is_numeric_dtype(rows[c])]
    return rows.astype({c: float if c in numeric else object for c in rows.columns})


@pytest.fixture(scope="module")
def logged_model(trained_crm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's training on a small CRM: its registered model downloaded to a folder."""
    folder = tmp_path_factory.mktemp("portable")
    with pytest.MonkeyPatch.context() as patch:
        use_store(patch, trained_crm.parent)
        mlflow.set_tracking_uri(store_uri(trained_crm.parent))
        model_dir = Path(
            mlflow.artifacts.download_artifacts(
                "models:/close-probability/1", dst_path=str(folder / "model")
            )
        )
    return model_dir


def test_the_model_carries_closeprobs_code_and_every_runtime_requirement(
    logged_model: Path,
) -> None:
    model_dir = logged_model
    code = model_dir / "code" / "closeprob"
    for module in (
        "__init__.py",
        "pipeline/model_artifact.py",
        "models/classifier.py",
        "models/native.py",
    ):
        assert (code / module).is_file(), module
    assert (model_dir / "pyfunc_model.py").is_file()
    assert not list(code.rglob("__pycache__"))
    assert not list(model_dir.rglob("*.pkl"))
    required = {
        line.split("==")[0] for line in (model_dir / "requirements.txt").read_text().splitlines()
    }
    assert {"mlflow", "lightgbm", "scikit-learn", "pandas", "pydantic", "pyyaml"} <= required
    assert "cloudpickle" not in required and "closeprob" not in required


@pytest.mark.slow
def test_the_model_loads_and_predicts_in_a_fresh_virtualenv_from_its_requirements_only(
    logged_model: Path, tmp_path: Path, model_python: Callable[[Path], Path]
) -> None:
    model_dir = logged_model
    example = input_example(model_dir)
    expected = load_registered_model(str(model_dir)).close.predict_proba(example)
    python = model_python(model_dir / "requirements.txt")
    env = outside_env()
    rows, out = tmp_path / "rows.pkl", tmp_path / "p_close.parquet"
    example.to_pickle(rows)
    scored = subprocess.run(
        [str(python), "-c", SCORE_SCRIPT, str(model_dir), str(rows), str(out)],
        cwd=tmp_path,  # not the repository: its closeprob/ folder must not be on the path
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert scored.stdout.strip().startswith(str(model_dir / "code" / "closeprob"))
    np.testing.assert_allclose(pd.read_parquet(out)["p_close"], expected, rtol=0, atol=1e-12)
