"""The installed namespace: nothing generic in site-packages, and models registered by
closeprob 0.1 (pickled under `pipeline.pyfunc`, `models.classifier`, …) still score."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.pipeline.registry import load_registered_model

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_closeprob_0_1"


def test_a_model_pickled_before_the_namespace_move_loads_and_scores_the_same() -> None:
    loaded = load_registered_model(str(FIXTURE / "model"))
    rows = pd.read_csv(FIXTURE / "rows.csv")
    expected = rows.pop("p_close_expected").to_numpy()
    categorical = list(loaded.close.categories)
    p_close = loaded.close.predict_proba(rows.astype({c: object for c in categorical}))
    np.testing.assert_allclose(p_close, expected, rtol=0, atol=1e-12)
    assert loaded.value is not None
    assert loaded.close.linear is None and loaded.close.blend_weight == 1.0  # booster alone


def test_loading_a_legacy_model_leaves_no_generic_module_names_behind() -> None:
    before = {name for name in ("pipeline", "models", "features") if name in sys.modules}
    load_registered_model(str(FIXTURE / "model"))
    after = {name for name in ("pipeline", "models", "features") if name in sys.modules}
    assert after == before


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
