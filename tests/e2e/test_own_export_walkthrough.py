"""README "Train on your own CRM export", step by step through the real CLI, on the small raw
export shipped in tests/fixtures/crm_export (headers as a CRM writes them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from closeprob.pipeline.cli import main

EXPORT = Path(__file__).resolve().parents[1] / "fixtures" / "crm_export"


@pytest.mark.slow
def test_a_raw_export_goes_through_check_mapping_train_and_predict_under_its_own_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exports" / "acme").mkdir(parents=True)
    (tmp_path / "configs").mkdir()
    for name in ("deals.csv", "interactions.csv"):
        shutil.copy(EXPORT / name, tmp_path / "exports" / "acme" / name)
    default = str(EXPORT.parents[2] / "configs" / "default.yaml")
    raw = [
        "--config",
        default,
        "--deals",
        "exports/acme/deals.csv",
        "--interactions",
        "exports/acme/interactions.csv",
    ]

    # 1. The raw export against the default config: every problem at once, nothing written.
    assert main(["check", *raw]) == 2
    out = capsys.readouterr().out
    assert "column 'Deal ID' differs from 'deal_id' only by case, spaces or punctuation" in out
    assert "missing required columns 'created_at' (did you mean 'Created Date'?)" in out
    assert "no columns ['company_size', 'source'], named by data.attributes" in out
    assert "no 'owner_id' (the owner's track record); is it 'Deal Owner'?" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "exports"]

    # 2. With the mapping config: clean, with the double import and the amount typo flagged.
    shutil.copy(EXPORT / "acme.yaml", tmp_path / "configs" / "acme.yaml")
    assert main(["check", "--config", "configs/acme.yaml"]) == 0
    out = capsys.readouterr().out
    assert "dropped 12 rows that repeat an earlier row in every column" in out
    assert "column 'amount' is above 1000× their product median in 1 deal" in out
    assert "won 183, lost 365, open 52" in out
    assert "levels in" in out and "no errors: ready to train" in out

    # 3. Train: registered as 'acme', never into the built-in 'close-probability'.
    assert main(["train", "--config", "configs/acme.yaml"]) == 0
    out = capsys.readouterr().out
    assert "in experiment 'acme'" in out and "registered 'acme' version 1" in out
    client = MlflowClient()
    assert [m.name for m in client.search_registered_models()] == ["acme"]
    assert str(client.get_registered_model("acme").aliases["champion"]) == "1"
    version = client.get_model_version("acme", "1")
    assert version.description.startswith(
        "Trained on 'acme' (exports/acme/deals.csv): 600 deals and 6,189 interactions, "
        "2023-01-04 to 2024-12-30. Test ROC-AUC 0."
    )
    assert version.tags["data.name"] == "acme" and version.tags["data.deals_rows"] == "600"
    assert {"test_roc_auc", "test_ece", "data.first_at", "data.last_at"} <= set(version.tags)
    run = client.get_run(version.run_id)
    assert run.info.run_name == "train acme 2024-12-30"
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"acme deals", "acme interactions"}
    assert inputs["acme deals"].dataset.source_type == "local"
    # The schema (read from the first rows) names the contract's columns; the profile counts
    # every row.
    deals_input = inputs["acme deals"].dataset
    assert "deal_id" in deals_input.schema and "created_at" in deals_input.schema
    assert '"num_rows": 600' in deals_input.profile

    # 4. Predict with the champion of that name.
    assert main(["predict", "--config", "configs/acme.yaml"]) == 0
    captured = capsys.readouterr()
    queue = pd.read_csv(tmp_path / "outputs" / "acme_queue.csv")
    assert len(queue) == 52 and queue["deal_id"].is_unique
    assert "column 'amount' is above 1000× their product median in 1 deal" in captured.err
    predictions = client.get_experiment_by_name("acme-predictions")
    [scored] = client.search_runs([predictions.experiment_id])
    assert scored.info.run_name == "predict acme 2024-12-30"
    assert len(scored.inputs.dataset_inputs) == 2

    # 5. An empty activity log at predict: scored, with a warning that counts the deals.
    (tmp_path / "exports" / "acme" / "none.csv").write_text(
        "Deal ID,Activity Date,Activity Type,Channel,Direction,Value\n"
    )
    empty = ["--interactions", "exports/acme/none.csv", "--out", "outputs/empty.csv"]
    assert main(["predict", "--config", "configs/acme.yaml", *empty]) == 0
    assert "all 52 open deals score as never touched" in capsys.readouterr().err
