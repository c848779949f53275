"""The Spark engine writes the local engine's queue: same ranks, p_close within 1e-9, whatever
the number of partitions, from Parquet files or partitioned folders."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.cli import main
from closeprob.pipeline.config import Config, DataConfig, load_config
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.plausibility import dominant_deals, placeholder_dates
from closeprob.pipeline.problems import Problems
from closeprob.pipeline.registry import LoadedModel, load_registered_model
from closeprob.pipeline.scoring import QUEUE_COLUMNS, build_local_queue
from closeprob.pipeline.spark.buckets import map_buckets
from closeprob.pipeline.spark.features import spark_feature_builder
from closeprob.pipeline.spark.queue import build_spark_queue
from closeprob.pipeline.spark.read import read_spark_table
from closeprob.pipeline.spark.shares import whole_table_rules
from closeprob.pipeline.training import prepare_training_data
from tests.conftest import copy_trained_crm, use_store

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def crm(trained_crm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's small trained CRM, and the data also as Parquet: deals in one
    file, interactions in a folder of three files that split deals' events between them."""
    folder = tmp_path_factory.mktemp("spark_crm")
    path = copy_trained_crm(trained_crm, folder)
    # Typed Parquet as pandas writes it: nanosecond UTC timestamps (Spark reads microseconds).
    dataset = load_dataset(load_config(path).data)
    (folder / "interactions").mkdir()
    for part, rows in enumerate(np.array_split(np.arange(len(dataset.interactions)), 3)):
        part_path = folder / "interactions" / f"part-{part}.parquet"
        dataset.interactions.iloc[rows].to_parquet(part_path)
    dataset.deals.to_parquet(folder / "deals.parquet")
    return path


@pytest.fixture()
def store(crm: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    use_store(monkeypatch, crm.parent)
    return crm


def parquet_config(path: Path, partitions: int) -> Config:
    config = load_config(path)
    data = config.data.model_copy(
        update={
            "deals": path.parent / "deals.parquet",
            "interactions": path.parent / "interactions",
        }
    )
    spark = config.spark.model_copy(update={"partitions": partitions})
    return config.model_copy(update={"data": data, "spark": spark})


@dataclass(frozen=True)
class LocalQueues:
    """The local engine's queues the Spark queue is compared with, and the model they used."""

    loaded: LoadedModel
    previous: pd.DataFrame  # 30 days before the latest date
    queue: pd.DataFrame  # at the latest date, against `previous`


@pytest.fixture(scope="module")
def local_queues(crm: Path) -> LocalQueues:
    """The local engine (it reads the CSV files) on the deal columns the parity test asks for:
    built once for every partition count, since they do not depend on it."""
    with pytest.MonkeyPatch.context() as patch:
        use_store(patch, crm.parent)
        config = with_columns(load_config(crm), ("industry", "region"))
        loaded = load_registered_model(config.model_uri)
        dataset = load_dataset(config.data)
        local_at = build_local_queue(dataset, config, loaded, None, None)["as_of"].iloc[0]
        earlier = (pd.Timestamp(local_at) - pd.Timedelta(days=30)).isoformat()
        previous = build_local_queue(dataset, config, loaded, earlier, None)
        queue = build_local_queue(dataset, config, loaded, None, previous)
    return LocalQueues(loaded, previous, queue)


@pytest.mark.parametrize("partitions", [1, 2, 7])
def test_the_spark_queue_equals_the_local_queue(
    spark: object,
    store: Path,
    local_queues: LocalQueues,
    partitions: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every column, the pass-through deal columns (predict.columns) and why_changed against
    an earlier queue included; the health's feature rows sampled or not (7 partitions: 5)."""
    config = with_columns(parquet_config(store, partitions), ("industry", "region"))
    caplog.set_level(logging.INFO, logger="closeprob")
    if partitions == 7:
        sampled = config.spark.model_copy(update={"health_sample_deals": 5})
        config = config.model_copy(update={"spark": sampled})
    loaded, previous, local = local_queues.loaded, local_queues.previous, local_queues.queue
    built = build_spark_queue(config, lambda: loaded, None, previous)
    queue, used = built.queue, built.loaded
    assert built.health is not None and built.health.rows == len(queue)
    sampled_line = f"uniform sample of 5 of the {len(queue):,} open deals"
    assert (sampled_line in caplog.text) == (partitions == 7)
    assert used is loaded
    assert list(queue.columns) == list(local.columns)
    assert list(queue.columns[2:4]) == ["industry", "region"]
    assert set(QUEUE_COLUMNS) <= set(queue.columns)
    assert queue["deal_id"].tolist() == local["deal_id"].tolist()
    np.testing.assert_allclose(queue["p_close"], local["p_close"], rtol=0, atol=1e-9)
    inexact = ("p_close", "expected_value", "p_close_change")
    same = [c for c in local.columns if c not in inexact]
    pd.testing.assert_frame_equal(queue[same], local[same])
    np.testing.assert_allclose(queue["expected_value"], local["expected_value"], rtol=1e-9)
    assert (queue["reasons_up"] != "").any()
    assert (queue["why_changed"].fillna("") != "").any()


def with_columns(config: Config, columns: tuple[str, ...]) -> Config:
    predict = config.predict.model_copy(update={"columns": columns})
    return config.model_copy(update={"predict": predict})


def events_seen(events: pd.DataFrame, deals: pd.DataFrame) -> pd.DataFrame:
    """One row per deal in this bucket's events: how many of its events the bucket holds."""
    counts = events["deal_id"].value_counts()
    return pd.DataFrame(
        {"deal_id": counts.index.astype("str"), "events": counts.to_numpy(), "calls": 1}
    )


def test_a_deal_whose_events_are_split_across_files_lands_in_one_partition(
    spark: object, store: Path
) -> None:
    folder = store.parent / "interactions"
    files = {f.name: pd.read_parquet(f)["deal_id"] for f in sorted(folder.glob("*.parquet"))}
    split = set(files["part-0.parquet"]) & set(files["part-1.parquet"])
    assert split, "the fixture must split some deal's events between two files"
    interactions = read_spark_table(spark, folder)  # type: ignore[arg-type]
    deal_ids = pd.concat(files.values()).drop_duplicates()
    seen = map_buckets(
        spark,  # type: ignore[arg-type]
        interactions,
        deal_ids.to_frame(),
        7,
        events_seen,
        "deal_id string, events long, calls long",
    ).toPandas()
    assert seen["deal_id"].is_unique  # every deal's events were in one bucket
    expected = pd.concat(files.values()).value_counts()
    assert seen.set_index("deal_id")["events"].to_dict() == expected.to_dict()


def test_predict_engine_spark_writes_the_local_queue_and_logs_the_run(
    spark: object, store: Path, tmp_path: Path
) -> None:
    # Both as Parquet: a CSV queue rounds p_close for people (full precision stays in Parquet).
    local, remote = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    assert main(["predict", "--config", str(store), "--out", str(local)]) == 0
    # The config's CSV files, read by Spark as the local engine reads them (all text).
    spark_args = ["--out", str(remote), "--engine", "spark"]
    assert main(["predict", "--config", str(store), *spark_args]) == 0
    a = pd.read_parquet(local)
    b = pd.read_parquet(remote)
    assert b["deal_id"].tolist() == a["deal_id"].tolist()
    np.testing.assert_allclose(b["p_close"], a["p_close"], rtol=0, atol=1e-9)
    assert b["tier"].tolist() == a["tier"].tolist()
    client = MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name(load_config(store).prediction_experiment).experiment_id],
        order_by=["attributes.start_time DESC"],
    )
    logged = Path(runs[0].data.params["queue_path"])  # the day partition's queue
    assert logged.name == remote.name and logged.parent.parent == tmp_path / "spark"
    assert runs[0].data.metrics["rows_scored"] == len(b)
    # The batch's health, measured on Spark from every open deal (fewer than
    # spark.health_sample_deals), is the local engine's.
    local_health = {k: v for k, v in runs[1].data.metrics.items() if k.startswith("health_")}
    assert len(local_health) == 7
    spark_health = {k: v for k, v in runs[0].data.metrics.items() if k.startswith("health_")}
    assert spark_health == pytest.approx(local_health, rel=1e-9, abs=1e-12)


def test_a_bad_value_found_by_a_spark_worker_is_reported_as_by_the_local_engine(
    spark: object, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = pd.read_csv(store.parent / "interactions.csv", dtype="str")
    events.loc[5, "direction"] = "sideways"
    bad = tmp_path / "interactions.parquet"
    events.to_parquet(bad)
    out = tmp_path / "queue.csv"
    args = ["--config", str(store), "--out", str(out), "--interactions", str(bad)]
    args += ["--model", "models:/close-probability@champion"]  # own files get their own name
    assert main(["predict", *args]) == 2
    local = capsys.readouterr().err
    assert main(["predict", *args, "--engine", "spark"]) == 2
    assert capsys.readouterr().err == local
    assert "interactions.parquet: column 'direction'" in local
    assert not out.exists()


def test_without_java_the_spark_engine_says_how_to_install_it(
    store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert os.environ["PATH"] == str(tmp_path)
    assert main(["predict", "--config", str(store), "--engine", "spark"]) == 2
    err = capsys.readouterr().err
    assert "needs Java" in err and "openjdk-17" in err


def test_the_spark_training_table_equals_the_local_one_and_is_kept_as_parquet(
    spark: object, store: Path, tmp_path: Path
) -> None:
    config = parquet_config(store, 3)
    out = tmp_path / "features.parquet"
    config = config.model_copy(
        update={"spark": config.spark.model_copy(update={"training_features": out})}
    )
    dataset = load_dataset(load_config(store).data)
    local = prepare_training_data(dataset, load_config(store))
    remote = prepare_training_data(dataset, config, spark_feature_builder(config))
    pd.testing.assert_frame_equal(remote.features, local.features, rtol=0, atol=1e-12)
    pd.testing.assert_series_equal(remote.labels, local.labels)
    assert len(pd.read_parquet(out)) == len(local.features)


def test_a_training_features_folder_holding_other_files_is_refused_and_left_whole(
    store: Path, tmp_path: Path
) -> None:
    """spark.training_features pointing at a user's folder (`reports/`) used to be deleted by
    the swap; it is refused before any Spark work, and an earlier feature table is still
    replaceable."""
    from closeprob.pipeline.errors import CloseprobError
    from closeprob.pipeline.spark.feature_table import FEATURE_TABLE_MARK, check_replaceable

    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "q3.xlsx").write_text("mine")
    config = load_config(store)
    config = config.model_copy(
        update={"spark": config.spark.model_copy(update={"training_features": reports})}
    )
    build = spark_feature_builder(config)
    with pytest.raises(CloseprobError, match=r"holds \['q3.xlsx'\], so it is not a feature table"):
        build(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), FeatureSpec(event_types=()))
    assert (reports / "q3.xlsx").read_text() == "mine"
    earlier = tmp_path / "features.parquet"
    earlier.mkdir()
    for name in ("part-00000-a.snappy.parquet", ".part-00000-a.snappy.parquet.crc", "_SUCCESS"):
        (earlier / name).write_text("")
    (earlier / FEATURE_TABLE_MARK).write_text("")
    check_replaceable(earlier)
    a_file = tmp_path / "table.parquet"
    a_file.write_text("x")
    with pytest.raises(CloseprobError, match="is a file"):
        check_replaceable(a_file)


def test_several_bad_values_read_by_spark_give_the_local_engines_message_listing_all(
    spark: object, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both engines check through dataset.check_interactions: the local engine lists the three
    broken rules; Spark lists every failing bucket's problems, each line the local engine's
    own (no Java traceback)."""
    events = pd.read_csv(store.parent / "interactions.csv", dtype="str")
    events.loc[5, "direction"] = "sideways"
    events.loc[7, "occurred_at"] = "yesterday"
    events.loc[9, "deal_id"] = "NOT-A-DEAL"
    bad = tmp_path / "interactions.parquet"
    events.to_parquet(bad)
    args = ["--config", str(store), "--out", str(tmp_path / "q.csv"), "--interactions", str(bad)]
    args += ["--model", "models:/close-probability@champion"]
    assert main(["predict", *args]) == 2
    local = capsys.readouterr().err
    assert main(["predict", *args, "--engine", "spark"]) == 2
    remote = capsys.readouterr().err
    for rule in ("column 'direction'", "column 'occurred_at'", "column 'deal_id'"):
        assert rule in local, local
    assert "Traceback" not in remote and "java" not in remote
    assert sorted(remote.splitlines()) == sorted(local.splitlines()), remote


def test_a_warning_found_by_a_spark_worker_reaches_the_drivers_stderr_as_locally(
    spark: object, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An interaction dated before its deal was created: the bucket that holds it warns, and
    the driver prints the local engine's warning."""
    events = pd.read_csv(store.parent / "interactions.csv", dtype="str")
    deals = pd.read_csv(store.parent / "deals.csv", dtype="str").set_index("deal_id")
    created = pd.Timestamp(deals["created_at"][events.loc[30, "deal_id"]])
    events.loc[30, "occurred_at"] = (created - pd.Timedelta(days=3)).isoformat()
    early = tmp_path / "interactions.parquet"
    events.to_parquet(early)
    args = ["--config", str(store), "--interactions", str(early)]
    args += ["--model", "models:/close-probability@champion"]
    assert main(["predict", *args, "--out", str(tmp_path / "local.csv")]) == 0
    local = capsys.readouterr().err
    assert main(["predict", *args, "--out", str(tmp_path / "spark.csv"), "--engine", "spark"]) == 0
    remote = capsys.readouterr().err
    assert "1 interactions are dated before their deal was created (up to 3 days" in local
    assert untimed(remote) == untimed(local), remote


def untimed(err: str) -> list[str]:
    """stderr's lines without the time logging puts before a warning."""
    return [re.sub(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", "", line) for line in err.splitlines()]


def test_the_share_rules_of_the_whole_table_warn_and_err_on_spark_as_locally(
    spark: SparkSession,
) -> None:
    """One deal with most events, all at one time, and a placeholder date: the Spark engine's
    driver-side aggregates give the local rules' messages (plausibility.py)."""
    times = [pd.Timestamp("2024-03-01 09:00", tz="UTC")] * 45
    times += [pd.Timestamp("2024-03-02", tz="UTC") + pd.Timedelta(hours=h) for h in range(15)]
    times[-1] = pd.Timestamp("1970-01-01", tz="UTC")
    events = pd.DataFrame(
        {
            "deal_id": ["D1"] * 45 + [f"D{n}" for n in range(2, 17)],
            "occurred_at": times,
            "type": "email",
            "channel": None,
            "direction": None,
            "value": float("nan"),
        }
    ).astype({"deal_id": "str", "type": "str"})
    data = DataConfig(deals=Path("deals.csv"), interactions=Path("interactions.csv"))
    local = Problems(strict=False)
    placeholder_dates(
        events["occurred_at"], events["deal_id"], "interactions.csv", "occurred_at", local
    )
    dominant_deals(events, data, "interactions.csv", local)
    remote = Problems(strict=False)
    table = spark.createDataFrame(events[["deal_id", "occurred_at"]].astype(object))
    whole_table_rules(table, data, remote)
    assert len(local.errors) == 1 and len(local.warnings) == 2
    assert remote.errors == local.errors and remote.warnings == local.warnings


def test_a_header_only_interactions_file_warns_on_spark_as_it_does_locally(
    spark: object, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = pd.read_csv(store.parent / "interactions.csv", dtype="str").head(0)
    empty = tmp_path / "interactions.parquet"
    events.to_parquet(empty)
    args = ["--config", str(store), "--interactions", str(empty)]
    args += ["--model", "models:/close-probability@champion"]
    assert main(["predict", *args, "--out", str(tmp_path / "local.csv")]) == 0
    local = capsys.readouterr().err
    assert main(["predict", *args, "--out", str(tmp_path / "spark.csv"), "--engine", "spark"]) == 0
    remote = capsys.readouterr().err
    warning = "no interaction rows (the file has a header only)"
    assert warning in local and warning in remote
