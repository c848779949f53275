"""What the Spark engine sends to its workers: the model as its native files' text (no
pickled model), checked by sha256 before it is rebuilt, and closeprob's code as one zip."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from closeprob.pipeline.model_artifact import ModelIntegrityError
from closeprob.pipeline.registry import closeprob_code
from closeprob.pipeline.spark.code import code_zip
from closeprob.pipeline.spark.scoring import ShippedModel
from tests.pipeline.native_models import tiny_model


def test_a_shipped_model_is_rebuilt_from_its_text_and_scores_as_the_original() -> None:
    model, _, rows = tiny_model()
    shipped = ShippedModel.of(model)
    assert isinstance(shipped.document, str) and isinstance(shipped.booster, str)
    rebuilt = shipped.build()
    assert shipped.build() is rebuilt  # once per worker process
    np.testing.assert_allclose(
        rebuilt.predict_proba(rows), model.predict_proba(rows), rtol=0, atol=1e-12
    )


def test_a_shipped_model_changed_on_the_way_is_refused() -> None:
    model, _, _ = tiny_model()
    shipped = ShippedModel.of(model)
    changed = replace(shipped, booster=shipped.booster.replace("leaf_value=", "leaf_value=1", 1))
    with pytest.raises(ModelIntegrityError, match=r"changed on the way .* it was not loaded"):
        changed.build()


def test_the_code_zip_holds_the_spark_workers_modules_and_is_named_by_its_content(
    tmp_path: Path,
) -> None:
    with closeprob_code() as root:
        first = code_zip(root, tmp_path)
        (tmp_path / "again").mkdir()
        again = code_zip(root, tmp_path / "again")
    assert first.name == again.name and first.name.startswith("closeprob-code-")
    names = set(zipfile.ZipFile(first).namelist())
    for module in ("__init__.py", "pipeline/spark/scoring.py", "features/build.py"):
        assert f"closeprob/{module}" in names
    assert not [n for n in names if "__pycache__" in n]
