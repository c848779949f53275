"""Models registered by closeprob 0.1/0.2 (pickles): refused with the migrate command, which
rebuilds them as native models under --trust-pickle and scores exactly as before; and the
installed namespace imports nothing generic from site-packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from closeprob.pipeline.cli import main
from closeprob.pipeline.jobs.migrate_model import unpickle_legacy
from closeprob.pipeline.model_artifact import DIGESTS_TAG
from closeprob.pipeline.registry import load_registered_model

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_closeprob_0_1"
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"


def _scores(model_uri: str) -> tuple[np.ndarray, np.ndarray]:
    loaded = load_registered_model(model_uri)
    rows = pd.read_csv(FIXTURE / "rows.csv")
    expected = rows.pop("p_close_expected").to_numpy()
    categorical = list(loaded.close.categories)
    return loaded.close.predict_proba(rows.astype({c: object for c in categorical})), expected


def test_a_model_of_an_earlier_release_is_refused_naming_the_migrate_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = str(FIXTURE / "model")
    with pytest.raises(Exception, match="registered by an earlier closeprob release"):
        load_registered_model(model)
    assert main(["migrate-model", model, "--config", str(CONFIG)]) == 2
    error = capsys.readouterr().err
    assert "pass --trust-pickle only if you trust the registry it came from" in error


def test_migrate_model_rebuilds_a_native_version_that_scores_exactly_as_before(
    mlflow_sandbox: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    model = str(FIXTURE / "model")
    assert main(["migrate-model", model, "--trust-pickle", "--config", str(CONFIG)]) == 0
    out = capsys.readouterr().out
    assert "registered as 'close-probability' version 1" in out
    assert "closeprob promote --version 1" in out
    p_close, expected = _scores("models:/close-probability/1")
    np.testing.assert_allclose(p_close, expected, rtol=0, atol=1e-12)
    client = MlflowClient(tracking_uri=mlflow_sandbox, registry_uri=mlflow_sandbox)
    assert DIGESTS_TAG in client.get_model_version("close-probability", "1").tags
    assert main(["promote", "--config", str(CONFIG), "--version", "1"]) == 0
    local = Path(mlflow.artifacts.download_artifacts("models:/close-probability@champion"))
    assert not list(local.rglob("*.pkl"))


def test_migration_reads_the_earlier_classes_without_importing_generic_module_names() -> None:
    before = {name for name in ("pipeline", "models", "features") if name in sys.modules}
    close, value = unpickle_legacy(FIXTURE / "model" / "python_model.pkl")
    after = {name for name in ("pipeline", "models", "features") if name in sys.modules}
    assert after == before
    assert value is not None
    assert close.linear is None and close.blend_weight == 1.0  # booster alone
    assert close.spec.market_window_days == 0  # the family did not exist: none read


def test_importing_closeprob_outside_the_repository_imports_no_generic_top_level_module(
    tmp_path: Path,
) -> None:
    (tmp_path / "models.py").write_text("USER_MODELS = True\n")  # a user's own models.py
    script = (
        "import sys, models\n"
        "import closeprob.pipeline.cli, closeprob.pipeline.registry\n"
        "assert models.USER_MODELS\n"
        "assert 'pipeline' not in sys.modules and 'features' not in sys.modules\n"
        "print(closeprob.pipeline.registry.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "closeprob.pipeline.registry"
