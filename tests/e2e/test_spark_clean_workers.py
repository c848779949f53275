"""Spark workers whose Python has only the model's requirements: in a module of its own (its
driver is a subprocess with its own Spark, and its virtualenv is the portable-model test's), so
that pytest-xdist runs it beside the other Spark tests rather than after them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from closeprob.pipeline.cli import main
from tests.conftest import copy_trained_crm, outside_env, store_uri, use_store

pytestmark = pytest.mark.slow


@pytest.fixture()
def store(
    trained_crm: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A copy of the session's small trained CRM, tracked into for the rest of the test."""
    folder = tmp_path_factory.mktemp("spark_crm")
    path = copy_trained_crm(trained_crm, folder)
    use_store(monkeypatch, folder)
    return path


def test_workers_with_only_the_models_requirements_write_the_local_queue(
    store: Path, tmp_path: Path, model_python: Callable[[Path], Path]
) -> None:
    """Spark workers whose Python has only the model's requirements (a fresh virtualenv from
    its requirements.txt, as PYSPARK_PYTHON) and no closeprob score with the closeprob code
    the driver ships them and the model sent as its files; the queue is the local engine's.
    The driver runs in a process of its own started outside the checkout (a Python worker has
    its working folder on its path, and the checkout holds closeprob/)."""
    model = mlflow.artifacts.download_artifacts(
        "models:/close-probability@champion",
        dst_path=str(tmp_path / "model"),
        tracking_uri=store_uri(store.parent),
    )
    python = model_python(Path(model) / "requirements.txt")
    where = "import importlib.util; print(importlib.util.find_spec('closeprob'))"
    probe = subprocess.run(
        [str(python), "-c", where],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.stdout.strip() == "None", probe.stdout + probe.stderr
    local, remote = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    assert main(["predict", "--config", str(store), "--out", str(local)]) == 0
    command = [sys.executable, "-m", "closeprob", "predict", "--config", str(store)]
    command += ["--engine", "spark", "--out", str(remote)]
    env = outside_env() | {"PYSPARK_PYTHON": str(python)}
    spark_run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert spark_run.returncode == 0, spark_run.stderr[-3000:]
    a, b = pd.read_parquet(local), pd.read_parquet(remote)
    assert b["deal_id"].tolist() == a["deal_id"].tolist()
    np.testing.assert_allclose(b["p_close"], a["p_close"], rtol=0, atol=1e-9)
    assert b["reasons_up"].tolist() == a["reasons_up"].tolist()
