"""One small end-to-end training through the CLI (the session's shared `trained_crm`), against
a temporary MLflow store."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from closeprob.models.selection import judging_deals, rolling_folds
from closeprob.pipeline.cli import main
from closeprob.pipeline.config import load_config
from closeprob.pipeline.core import TrainingResult
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.training import train_close_model
from tests.conftest import copy_trained_crm, store_uri, use_store


@pytest.fixture(scope="module")
def in_memory(trained_crm: Path) -> TrainingResult:
    """The shared CRM trained once more in this process, without MLflow."""
    config = load_config(trained_crm)
    return train_close_model(load_dataset(config.data), config)


@pytest.mark.slow
def test_train_logs_metrics_artifacts_and_registers_champion_and_challenger(
    trained_crm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session's first training (into a new store), then one more on a copy of it."""
    printed = (trained_crm.parent / "train.out").read_text()
    assert "Test metrics" in printed and "oracle roc_auc" in printed
    # The evaluated model is fitted on every slice before the test embargo, not train alone.
    assert "fitted on the train, validation and calibration slices" in printed

    uri = store_uri(trained_crm.parent)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("close-probability")
    (run,) = client.search_runs([experiment.experiment_id])
    metrics = run.data.metrics
    # Each metric in the range a useful model reaches on this data, not merely "a number":
    # log loss and Brier below a constant prediction's (ln 2 and 0.25 at most), a small ECE,
    # and the oracle (true probabilities) near or above the model.
    assert 0.7 < metrics["test_roc_auc"] <= 1.0
    assert 0.0 < metrics["test_pr_auc"] <= 1.0
    assert 0.0 < metrics["test_log_loss"] < math.log(2)
    assert 0.0 < metrics["test_brier"] < 0.25
    assert 0.0 <= metrics["test_ece"] < 0.1
    assert metrics["test_oracle_roc_auc"] > metrics["test_roc_auc"] - 0.05
    # The calibration line on the test slice, with its deal-bootstrap interval, printed too.
    for key in ("calibration_intercept", "calibration_slope"):
        low, high = metrics[f"test_{key}_lo"], metrics[f"test_{key}_hi"]
        assert low <= metrics[f"test_{key}"] <= high and high - low < 1.5
    assert 0.5 < metrics["test_calibration_slope"] < 2.0
    assert "  slope " in printed and "1 when right in spread" in printed
    assert 0.0 < metrics["test_oracle_log_loss"] < math.log(2)
    assert run.data.params["snapshots.horizon_days"] == "90"
    assert "git_commit" in run.data.tags
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "reliability.png", "feature_importance.png", "features.txt"} <= artifacts

    model = client.get_registered_model("close-probability")
    assert {k: str(v) for k, v in model.aliases.items()} == {"champion": "1", "challenger": "1"}
    for key in ("test_roc_auc", "test_ece", "test_value_captured_at_capacity"):
        low, high = run.data.metrics[f"{key}_lo"], run.data.metrics[f"{key}_hi"]
        assert low <= run.data.metrics[key] <= high and low < high
    assert run.data.metrics["deployed_splits"] > 0
    for role in ("evaluated", "deployed"):  # the pooled Platt slope; the recent one beside it
        assert run.data.params[f"{role}.calibration_slope_source"] == "pooled"
        slope = {k: metrics[f"{role}_calibration_slope{k}"] for k in ("", "_pooled", "_recent")}
        low, high = (metrics[f"{role}_calibration_slope_recent_{end}"] for end in ("lo", "hi"))
        assert low < slope["_recent"] < high and slope[""] == slope["_pooled"]
        differs = metrics[f"{role}_calibration_slope_recent_differs"]
        assert differs == (0.0 if low <= slope["_pooled"] <= high else 1.0)
    assert "95 % interval" in printed and "trained_through" in printed
    slope = metrics["deployed_calibration_slope"]
    rows = int(metrics["deployed_calibration_slope_rows"])
    assert f"Platt slope {slope:.3f} from {rows:,} labelled rows' out-of-fold scores" in printed
    _check_trained_through(trained_crm, client)

    # A second training of the same data: a challenger, the champion stays.
    config = copy_trained_crm(trained_crm, tmp_path)
    use_store(monkeypatch, tmp_path)
    assert main(["train", "--config", str(config)]) == 0
    aliases = MlflowClient().get_registered_model("close-probability").aliases
    assert {k: str(v) for k, v in aliases.items()} == {"champion": "1", "challenger": "2"}


def _check_trained_through(config_path: Path, client: MlflowClient) -> None:
    """The deployed model learns up to the last label known at the data's end: within one
    horizon plus one snapshot step of it, never a label unknown then."""
    config = load_config(config_path)
    dataset = load_dataset(config.data)
    end = max(dataset.deals["created_at"].max(), dataset.deals["closed_at"].max())
    end = max(end, dataset.interactions["occurred_at"].max())
    version = client.get_model_version_by_alias("close-probability", "champion")
    trained_through = pd.Timestamp(version.tags["trained_through"], tz="UTC")
    horizon = pd.Timedelta(days=config.snapshots.horizon_days)
    assert trained_through + horizon <= end
    assert end - trained_through <= horizon + pd.Timedelta(days=config.snapshots.every_days + 1)
    first, last = version.tags["calibrated_on"].split("/")
    assert pd.Timestamp(last, tz="UTC") == trained_through and first <= last


@pytest.mark.slow
def test_registry_model_returns_the_training_probabilities(
    trained_crm: Path, in_memory: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pyfunc loaded by alias returns probabilities equal to the in-memory model's."""
    use_store(monkeypatch, trained_crm.parent)
    result = in_memory
    loaded = mlflow.pyfunc.load_model("models:/close-probability@challenger")
    rows = result.data.features.loc[result.data.rows("test"), result.model.feature_names]
    served = np.asarray(loaded.predict(rows.astype({c: object for c in result.model.categories})))
    assert served.min() >= 0.0 and served.max() <= 1.0
    assert len(np.unique(served)) > 10, "probabilities, not labels"
    np.testing.assert_allclose(served, result.model.predict_proba(rows), rtol=0, atol=1e-12)


@pytest.mark.slow
def test_same_data_config_and_seed_give_identical_probabilities(
    trained_crm: Path, in_memory: TrainingResult
) -> None:
    """...and a health reference drawn from a sample of the fit rows (`health.reference_rows`
    below their count) changes no probability; the reference counts the rows it saw, so
    predict's chance thresholds follow the sample. Below the cap it counts every fit row."""
    config = load_config(trained_crm)
    fit_rows = int(in_memory.data.role("fit").sum())
    assert in_memory.model.reference is not None
    assert in_memory.model.reference["rows"] == fit_rows
    capped = config.model_copy(
        update={"health": config.health.model_copy(update={"reference_rows": fit_rows // 3})}
    )
    second = train_close_model(load_dataset(config.data), capped)
    np.testing.assert_allclose(in_memory.test_p_close, second.test_p_close, rtol=0, atol=1e-12)
    assert second.model.reference is not None
    assert second.model.reference["rows"] == fit_rows // 3
    assert second.model.reference["event_types"] == in_memory.model.reference["event_types"]


@pytest.mark.slow
def test_no_row_that_calibrates_the_deployed_model_ever_early_stopped_a_booster(
    trained_crm: Path, in_memory: TrainingResult
) -> None:
    """The deployed booster grows the selection's tree count (no early stopping of its own),
    and its calibration window (the rows that fit the Platt intercept) shares no date with any
    rolling-origin fold that early-stopped a selection booster. The pooled slope rests on
    every fit row's out-of-fold score but the judging deals' rows on those folds' dates
    (they chose the tree count and blend weight), in the deployed and the evaluated model."""
    config = load_config(trained_crm)
    data, metrics = in_memory.data, in_memory.metrics
    assert metrics["deployed_trees"] == metrics["best_iteration"]
    folds = rolling_folds(
        data.split.train,
        data.split.validation,
        config.snapshots.horizon_days,
        config.split.selection_folds,
    )
    stopped = pd.DatetimeIndex(np.concatenate([fold.validation for fold in folds]))
    calibrating = data.features.loc[data.role("calibration"), "as_of"]
    assert len(folds) >= 1 and len(calibrating) > 0
    assert not calibrating.isin(stopped).any()
    assert calibrating.min() > stopped.max()
    assert metrics["selection_folds"] == len(folds)  # every fold judged: `stopped` is all
    judged = data.features["as_of"].isin(stopped) & judging_deals(data.features["deal_id"])
    before_test = data.rows("train") | data.rows("validation") | data.rows("calibration")
    for model, fit in ((in_memory.model, data.role("fit")), (in_memory.evaluated, before_test)):
        assert model.slope_choice is not None
        assert model.slope_choice.rows == int((fit & ~judged).sum()) < int(fit.sum())
