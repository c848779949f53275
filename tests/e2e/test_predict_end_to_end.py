"""The batch job end to end: registry model by alias, one row per open deal, atomic output."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from closeprob.features.build import build_features
from closeprob.features.snapshots import open_deal_snapshots
from closeprob.pipeline.cli import main
from closeprob.pipeline.config import load_config
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.registry import load_registered_model
from closeprob.pipeline.scoring import QUEUE_COLUMNS, build_queue, default_as_of, reason_rows
from tests.conftest import copy_trained_crm, use_store


@pytest.fixture(scope="module")
def trained(trained_crm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's copy of the session's trained CRM (its predict runs log into it)."""
    folder = tmp_path_factory.mktemp("crm")
    return copy_trained_crm(
        trained_crm, folder, predict={"out": str(folder / "queue.csv"), "chunk_rows": 97}
    )


@pytest.fixture()
def store(trained: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    use_store(monkeypatch, trained.parent)
    return trained


@pytest.mark.slow
def test_queue_lists_every_open_deal_once_with_the_registry_models_probabilities(
    store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "queue.parquet"
    assert main(["predict", "--config", str(store), "--out", str(out)]) == 0
    queue = pd.read_parquet(out)
    assert list(queue.columns) == QUEUE_COLUMNS

    config = load_config(store)
    dataset = load_dataset(config.data)
    as_of = default_as_of(dataset)
    open_ids = set(dataset.deals.loc[dataset.deals["closed_at"].isna(), "deal_id"])
    assert set(queue["deal_id"]) == open_ids and queue["deal_id"].is_unique
    assert queue["model_version"].eq("1").all()

    # The serving path: features built as in training, scored by the registry's pyfunc.
    served = mlflow.pyfunc.load_model("models:/close-probability@champion")
    model = served.unwrap_python_model().model
    snapshots = open_deal_snapshots(dataset.deals, pd.DatetimeIndex([as_of]))
    features = build_features(dataset.deals, dataset.interactions, snapshots, model.spec)
    rows = features[model.feature_names].astype({c: object for c in model.categories})
    expected = pd.Series(np.asarray(served.predict(rows)), index=features["deal_id"])
    np.testing.assert_allclose(
        queue["p_close"].to_numpy(), expected.loc[queue["deal_id"]].to_numpy(), rtol=0, atol=1e-12
    )
    # Reasons for the deals people read (`ranking.reasons_for: read`), none for the others.
    read = reason_rows(queue, config.ranking)
    assert 0 < read.sum() < len(queue)
    assert queue.loc[read, "reasons_up"].str.len().gt(0).mean() > 0.9
    assert queue.loc[~read, ["reasons_up", "reasons_down"]].eq("").all().all()
    # A deal without a declared amount is valued at its latest quote before as_of, if any.
    quotes = dataset.interactions[
        (dataset.interactions["type"] == "proposal_sent")
        & (dataset.interactions["occurred_at"] < as_of)
    ]
    latest = quotes.sort_values("occurred_at").groupby("deal_id")["value"].last()
    quoted = queue[queue["value_source"] == "quote"]
    assert len(quoted) > 0
    np.testing.assert_array_equal(quoted["deal_value"], latest.loc[quoted["deal_id"]])
    unvalued = set(dataset.deals.loc[dataset.deals["amount"].isna(), "deal_id"])
    assert set(quoted["deal_id"]) == unvalued & set(latest.index) & set(queue["deal_id"])

    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("close-probability-predictions").experiment_id]
    )
    assert runs[0].data.metrics["rows_scored"] == len(queue)


@pytest.mark.slow
def test_a_second_run_reports_changes_against_the_first(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "queue.csv"
    predict = ["predict", "--config", str(store), "--out", str(out)]
    assert main([*predict, "--as-of", "2024-12-01"]) == 0
    assert main(predict) == 0  # the data's end: a later day
    queue = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert queue["tier_change"].notna().any() or queue["p_close_change"].abs().gt(0).any()
    # p_close_change from full precision (the earlier day's scores.parquet), not the CSV's 3
    # decimals: each change is the difference of the two full-precision p_close, rounded.
    days = sorted((tmp_path / "queue").glob("as_of_date=*"))
    before, now = (pd.read_parquet(day / "scores.parquet").set_index("deal_id") for day in days)
    both = now.index.intersection(before.index)
    exact = (now.loc[both, "p_close"] - before.loc[both, "p_close"]).round(3)
    shown = queue.set_index("deal_id").loc[both, "p_close_change"]
    assert (shown - exact).abs().max() < 1e-9


@pytest.mark.slow
def test_bad_input_leaves_the_previous_queue_byte_for_byte(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "queue.csv"
    assert main(["predict", "--config", str(store), "--out", str(out)]) == 0
    before = out.read_bytes()
    config = load_config(store)
    bad = tmp_path / "deals.csv"
    text = config.data.deals.read_text().splitlines()
    bad.write_text("\n".join([*text, text[1]]) + "\n")  # a duplicated deal
    model = ["--model", "models:/close-probability@champion"]  # own --deals get their own name
    code = main(["predict", "--config", str(store), "--out", str(out), "--deals", str(bad), *model])
    assert code == 2
    assert "is duplicated" in capsys.readouterr().err
    assert out.read_bytes() == before


@pytest.mark.slow
def test_an_unknown_model_uri_is_refused_with_advice(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["predict", "--config", str(store), "--model", "models:/close-probability@nope"])
    assert code == 2
    assert "make train" in capsys.readouterr().err
    # The advice names the model asked for, not the built-in one.
    assert main(["predict", "--config", str(store), "--model", "models:/acme@champion"]) == 2
    err = capsys.readouterr().err
    assert "models:/acme@champion, models:/acme/3" in err and "close-probability" not in err


@pytest.mark.slow
def test_reasons_for_the_deals_read_are_those_of_reasons_for_all_and_p_close_does_not_change(
    store: Path,
) -> None:
    config = load_config(store)
    dataset = load_dataset(config.data)
    loaded = load_registered_model("models:/close-probability@champion")
    as_of = default_as_of(dataset)
    settings = ({"reasons_for": "read"}, {"reasons_for": "all"}, {"reasons": 0})
    read, every, none = (
        build_queue(dataset, loaded, as_of, config.ranking.model_copy(update=s), 50, None)
        for s in settings
    )
    pd.testing.assert_frame_equal(
        read.drop(columns=["reasons_up", "reasons_down"]),
        every.drop(columns=["reasons_up", "reasons_down"]),
    )
    np.testing.assert_array_equal(read["p_close"], none["p_close"])
    chosen = reason_rows(read, config.ranking)
    pd.testing.assert_frame_equal(
        read.loc[chosen, ["reasons_up", "reasons_down"]],
        every.loc[chosen, ["reasons_up", "reasons_down"]],
    )
    assert every["reasons_up"].str.len().gt(0).mean() > 0.9
    assert none[["reasons_up", "reasons_down"]].eq("").all().all()


HEALTH_METRICS = {
    "health_max_feature_psi",
    "health_score_psi",
    "health_expected_roc_auc",
    "health_expected_wins",
    "health_unseen_level_share",
    "health_days_stale",
}


@pytest.mark.slow
def test_health_is_quiet_on_own_data_and_names_features_when_activity_collapses_or_levels_change(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "queue.csv"
    assert main(["predict", "--config", str(store), "--out", str(out), "--fail-on-drift"]) == 0
    captured = capsys.readouterr()
    assert "health: expected ROC-AUC" in captured.out and "drift" not in captured.err
    client = MlflowClient()
    experiment = client.get_experiment_by_name("close-probability-predictions")
    run = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])[0]
    assert run.data.metrics.keys() >= HEALTH_METRICS
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "health")}
    assert artifacts == {"health/feature_psi.json", "health/feature_psi.png"}
    # The reference travels with the registered model, and the train run shows it too.
    reference = load_registered_model("models:/close-probability@champion").close.reference
    assert reference is not None and reference["schema"] == 1 and reference["features"]
    trained = client.search_runs([client.get_experiment_by_name("close-probability").experiment_id])
    logged = [{a.path for a in client.list_artifacts(r.info.run_id)} for r in trained]
    assert any("health_reference.json" in paths for paths in logged)

    # Activity cut by 80 % in the last 120 days: a warning naming features, exit 3, queue written.
    config = load_config(store)
    dataset = load_dataset(config.data)
    as_of = default_as_of(dataset)
    events = pd.read_csv(config.data.interactions)
    late = pd.to_datetime(events["occurred_at"], utc=True) >= as_of - pd.Timedelta(days=120)
    dropped = late & (np.random.default_rng(0).random(len(events)) < 0.8)
    collapsed = tmp_path / "interactions.csv"
    events[~dropped].to_csv(collapsed, index=False)
    model = ["--model", "models:/close-probability@champion", "--as-of", as_of.isoformat()]
    cut = ["--interactions", str(collapsed), *model, "--out", str(out), "--fail-on-drift"]
    out.unlink()
    assert main(["predict", "--config", str(store), *cut]) == 3
    err = capsys.readouterr().err
    assert "drift:" in err and "touches_30d" in err
    assert len(pd.read_csv(out)) > 0

    # Attribute levels renamed: the attribute is named; without --fail-on-drift, exit 0.
    deals = pd.read_csv(config.data.deals)
    deals["industry"] = deals["industry"] + " (renamed)"
    renamed = tmp_path / "deals.csv"
    deals.to_csv(renamed, index=False)
    assert main(["predict", "--config", str(store), "--deals", str(renamed), *model]) == 0
    assert "attr_industry (PSI" in capsys.readouterr().err


@pytest.mark.slow
def test_monitor_scores_past_queues_against_outcomes_and_logs_a_chart(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["monitor", "--config", str(store)]) == 2
    assert "no queue to monitor" in capsys.readouterr().err

    config = load_config(store)
    dataset = load_dataset(config.data)
    back = default_as_of(dataset) - pd.Timedelta(days=config.snapshots.horizon_days + 14)
    out = ["--out", str(tmp_path / "queue.csv")]
    assert main(["predict", "--config", str(store), "--as-of", back.isoformat(), *out]) == 0
    capsys.readouterr()
    assert main(["monitor", "--config", str(store)]) == 0
    printed = capsys.readouterr().out
    assert "1 past queues scored" in printed and "expected_roc_auc" in printed
    client = MlflowClient()
    experiment = client.get_experiment_by_name("close-probability-predictions")
    (run,) = client.search_runs([experiment.experiment_id], filter_string="tags.job = 'monitor'")
    assert run.data.metrics["monitor_past_queues"] == 1.0
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
        "monitor.json",
        "monitor.png",
    }


def open_deal_count(config_path: Path, as_of: str) -> int:
    dataset = load_dataset(load_config(config_path).data)
    return len(
        open_deal_snapshots(dataset.deals, pd.DatetimeIndex([pd.Timestamp(as_of, tz="UTC")]))
    )


@pytest.mark.slow
def test_two_days_and_a_rerun_leave_the_rows_of_both_days_in_sqlite_and_postgresql(
    store: Path, tmp_path: Path, postgres_url: str
) -> None:
    """The score table through `predict --to`, against a real PostgreSQL server and SQLite."""
    from closeprob.pipeline.scores_db import parse_scores_url, read_scores

    sqlite_url = f"sqlite:///{tmp_path / 'scores.db'}"
    days = ["2024-11-17", "2024-12-01"]
    for url in (sqlite_url, postgres_url):
        for day in [*days, days[1]]:
            out = tmp_path / "queue.csv"
            command = ["predict", "--config", str(store), "--out", str(out), "--as-of", day]
            assert main([*command, "--to", url]) == 0
        rows = read_scores(parse_scores_url(url))
        per_day = pd.to_datetime(rows["as_of"], utc=True).dt.strftime("%Y-%m-%d").value_counts()
        assert per_day.to_dict() == {day: open_deal_count(store, day) for day in days}
        assert not rows.duplicated(["deal_id", "as_of", "model_version"]).any()
        assert rows["stage"].notna().all()  # schema version 2
    # The days as partitions too: one folder per day, the rerun's replacing its day's.
    partitions = sorted(p.name for p in (tmp_path / "queue").iterdir())
    assert partitions == [f"as_of_date={day}" for day in days]
    latest = read_latest(postgres_url)
    assert latest["deal_id"].is_unique and len(latest) == open_deal_count(store, days[1])


def read_latest(url: str) -> pd.DataFrame:
    import adbc_driver_postgresql.dbapi

    with adbc_driver_postgresql.dbapi.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT deal_id, p_close FROM deal_scores_latest")
        return cursor.fetch_df()


@pytest.mark.slow
def test_a_failing_table_write_leaves_the_table_and_the_previous_queue_as_they_were(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from closeprob.pipeline import scores_db

    out = tmp_path / "queue.csv"
    base = ["predict", "--config", str(store), "--out", str(out)]
    assert main([*base, "--as-of", "2024-11-17"]) == 0  # scores.db beside the queue
    queue_before = out.read_bytes()
    table_before = scores_db.read_scores(
        scores_db.parse_scores_url(f"sqlite:///{tmp_path / 'scores.db'}")
    )

    def fail_half_way(cursor, connection, target, rows):  # type: ignore[no-untyped-def]
        cursor.execute(f"DELETE FROM {scores_db.TABLE}")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(scores_db, "insert_rows", fail_half_way)
    capsys.readouterr()
    assert main([*base, "--as-of", "2024-12-01"]) == 2
    error = capsys.readouterr().err
    assert "disk I/O error" in error and "nothing was written" in error
    assert out.read_bytes() == queue_before
    assert [p.name for p in (tmp_path / "queue").iterdir()] == ["as_of_date=2024-11-17"]
    table_after = scores_db.read_scores(
        scores_db.parse_scores_url(f"sqlite:///{tmp_path / 'scores.db'}")
    )
    pd.testing.assert_frame_equal(table_after, table_before)


@pytest.mark.slow
def test_history_answers_for_a_deal_scored_on_three_days_with_the_table_or_without(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "queue.csv"
    base = ["predict", "--config", str(store), "--out", str(out)]
    to = f"sqlite:///{tmp_path / 'scores.db'}"
    for day in ("2024-11-10", "2024-11-24", "2024-12-08"):
        assert main([*base, "--as-of", day, "--to", to]) == 0
    queue = pd.read_csv(out)
    # why_changed for every deal whose tier changed (and was open at the earlier date), only.
    tier_moved = queue["tier_change"].fillna("").str.contains("→")
    assert tier_moved.any()
    assert queue.loc[tier_moved, "why_changed"].fillna("").str.contains("the score").all()
    assert queue.loc[~tier_moved, "why_changed"].isna().all()
    assert queue.loc[queue["tier_change"].isna(), "rank_change"].notna().all()  # unchanged tier

    # A deal whose tier moved and that was open on all three days (which deals those are
    # depends on the model's scores).
    from closeprob.pipeline.scores_db import parse_scores_url, read_scores

    scorings = read_scores(parse_scores_url(to))["deal_id"].value_counts()
    moved = queue.loc[tier_moved, "deal_id"].astype(str)
    deal = str(moved[moved.map(scorings).eq(3)].iloc[0])
    capsys.readouterr()
    assert main(["history", deal, "--config", str(store), "--to", to]) == 0
    shown = capsys.readouterr().out
    assert "3 scorings, from table deal_scores" in shown
    assert shown.count("→") >= 2 and "the score)" in shown
    # Without a table: the day partitions of the config's queue, at full precision.
    raw = yaml.safe_load(store.read_text())
    raw["predict"]["out"] = str(out)
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump(raw))
    assert main(["history", deal, "--config", str(own), "--to", "off"]) == 0
    assert f"3 scorings, from the day partitions in {tmp_path / 'queue'}" in capsys.readouterr().out
    # Without either: the queues the three predict runs logged to MLflow (a queue path with no
    # day partitions: other tests of this module write partitions beside the store's queue).
    # (other tests of this module log predict runs to the same store: at least these three)
    raw["predict"]["out"] = str(tmp_path / "never-written" / "queue.csv")
    neither = tmp_path / "neither.yaml"
    neither.write_text(yaml.safe_dump(raw))
    assert main(["history", deal, "--config", str(neither), "--to", "off"]) == 0
    logged = re.search(r"(\d+) scorings, from the queues logged to MLflow", capsys.readouterr().out)
    assert logged is not None and int(logged.group(1)) >= 3
    assert main(["history", "NO-SUCH-DEAL", "--config", str(store), "--to", to]) == 2
    assert "deal_id 'NO-SUCH-DEAL': never scored" in capsys.readouterr().err


@pytest.mark.slow
def test_the_cron_line_of_the_docs_runs_under_env_i_and_ends_with_the_json_summary(
    store: Path, tmp_path: Path
) -> None:
    """docs/scores-out.md's crontab line, as cron runs it: an empty environment, /bin/sh,
    `\\%` unescaped; /srv/closeprob stands for a project folder made here."""
    import json
    import shutil
    import subprocess
    import sys

    import yaml

    docs = Path(__file__).resolve().parents[2] / "docs" / "scores-out.md"
    block = docs.read_text().split("```cron\n")[1].split("```")[0]
    line = next(row for row in block.splitlines() if row and not row.startswith("#"))
    command = line.split(None, 5)[5].replace("\\%", "%")
    project = tmp_path / "srv"
    (project / "configs").mkdir(parents=True)
    (project / "logs").mkdir()
    (project / ".venv").symlink_to(Path(sys.prefix))
    shutil.copy(store.parent / "mlflow.db", project / "mlflow.db")
    nightly = yaml.safe_load(store.read_text())
    nightly["root"] = ".."  # configs/..: the project folder, as in the shipped configs
    nightly["predict"]["out"] = "outputs/priority_queue.csv"  # relative: from the project
    nightly["predict"]["columns"] = ["industry"]  # a deal column shown beside the id
    (project / "configs" / "nightly.yaml").write_text(yaml.safe_dump(nightly))
    done = subprocess.run(
        ["env", "-i", "/bin/sh", "-c", command.replace("/srv/closeprob", str(project))],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    log = (project / "logs" / "predict.log").read_text()
    assert done.returncode == 0, log[-3000:]
    summary = json.loads(log.strip().splitlines()[-1])
    queue = pd.read_csv(project / "outputs" / "priority_queue.csv")
    assert summary["rows"] == len(queue) and summary["outputs"]["queue"].startswith("outputs/")
    assert summary["outputs"]["scores"] == "sqlite:///outputs/scores.db"
    assert list(queue.columns)[:3] == ["rank", "deal_id", "industry"]
    assert queue["p_close"].round(3).eq(queue["p_close"]).all()  # rounded for people
    assert queue["expected_value"].round(0).eq(queue["expected_value"]).all()
    assert "<th>Industry</th>" in (project / "outputs" / "priority_queue.html").read_text()
    assert {"drift", "drifted_features", "days_stale"} <= set(summary["flags"])  # health
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ Scored ", log, re.MULTILINE)


@pytest.mark.slow
def test_value_source_clv_adds_account_value_to_repeat_accounts_deals_in_the_queue(
    store: Path, tmp_path: Path
) -> None:
    raw = yaml.safe_load(store.read_text())
    raw["value"] = {**raw.get("value", {}), "source": "clv"}
    raw["ranking"] = {**raw.get("ranking", {}), "tier_by": "account_clv"}
    config_path = tmp_path / "clv.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "queue.csv"
    assert main(["predict", "--config", str(config_path), "--out", str(out)]) == 0
    queue = pd.read_csv(out)
    deals = load_dataset(load_config(config_path).data).deals.set_index("deal_id")
    with_clv = queue[queue["value_source"] == "clv"]
    assert 0 < len(with_clv) < len(queue)
    declared = deals.loc[with_clv["deal_id"], "amount"].fillna(0).to_numpy()
    assert (with_clv["deal_value"].to_numpy() > declared).all()
    assert set(queue["tier"]) <= {"A", "B", "C"} and (queue["tier"] == "A").any()


@pytest.mark.slow
def test_every_reason_of_a_queue_reads_in_the_direction_of_its_contribution(store: Path) -> None:
    """Each reason of a real queue, traced back to its feature by its phrase: those that raise
    the odds come from positive contributions, those that lower them from negative ones."""
    from closeprob.pipeline.sales_reasons import DOWN, UP, sales_phrases
    from closeprob.pipeline.scoring import build_queue_and_features

    config = load_config(store)
    dataset = load_dataset(config.data)
    loaded = load_registered_model(config.model_uri)
    as_of = default_as_of(dataset)
    queue, features = build_queue_and_features(dataset, loaded, as_of, config.ranking, 97, None)
    model = loaded.close
    read = queue[queue["reasons_up"].ne("") | queue["reasons_down"].ne("")]
    rows = features.set_index("deal_id").loc[read["deal_id"]].reset_index()
    contributions = model.contributions(model.encode(rows))
    phrases = sales_phrases(model.spec)
    checked = 0
    for row, (up, down) in enumerate(zip(read["reasons_up"], read["reasons_down"], strict=True)):
        signs: dict[str, set[float]] = {}
        for column, name in enumerate(phrases):
            text = phrases[name](rows[name].iloc[row])
            signs.setdefault(text, set()).add(float(np.sign(contributions[row, column])))
        for items, ending, sign in ((up, UP, 1.0), (down, DOWN, -1.0)):
            for item in filter(None, items.split("; ")):
                assert item.endswith(f" {ending}"), item
                assert sign in signs[item.removesuffix(f" {ending}")], item
                checked += 1
    assert checked >= len(read)
