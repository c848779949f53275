"""The Spark engine (local[2]) against the local engine, on one machine: batch scoring and the
training feature table, wall time and peak memory, plus per-partition figures for SCALING.md.

    .venv/bin/python bench/spark_engine.py --open-deals 100000 --interactions 1000000 \
        --partitions 2 --json bench/results/spark.json

Scoring: a CRM generated (as bench/score_throughput.py does) so that about `--open-deals` deals
are open at its end, scored at the end of the data by the local engine (read + validate, then
`build_queue`, stage by stage) and by `build_spark_queue` on a local[2] session, from the same
Parquet files (interactions as a folder of 8 files). Training features: the built-in CRM at
`--interactions` over 730 days, every weekly training snapshot featurised by `build_features`
and by the Spark feature builder (which writes the Parquet table and reads it back). Each
Spark output is checked against the local one. Per-partition figures: the training table again,
in `--partitions` buckets, each bucket timing its own `build_features` call.

Driver memory is this process's VmHWM, reset before each step; worker memory is the peak, over
the step, of the summed RSS of every process below this one (the JVM and its Python workers),
sampled every 0.2 s. Figures are printed and written, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from score_throughput import (  # bench/: this script's folder is on sys.path
    DEALS_FILE,
    INTERACTIONS_FILE,
    machine_lines,
    measure_shape,
    status_mib,
    train_bench_model,
    write_crm,
)
from stages import reset_peak

from closeprob.features.build import build_features
from closeprob.features.snapshots import open_deal_snapshots, training_dates
from closeprob.features.spec import FeatureSpec, select_event_types
from closeprob.pipeline.config import Config, DataConfig, SparkConfig
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.scoring import (
    default_as_of,
    explain_features,
    open_snapshots,
    rank_queue,
    reason_rows,
    score_features,
    snapshot_features,
    with_reasons,
)
from closeprob.pipeline.spark.buckets import map_buckets
from closeprob.pipeline.spark.features import (
    FeatureContext,
    features_bucket,
    spark_feature_builder,
)
from closeprob.pipeline.spark.queue import build_spark_queue
from closeprob.pipeline.spark.read import read_spark_table
from closeprob.pipeline.spark.session import spark_session
from closeprob.pipeline.spark.validation import checked_events
from closeprob.pipeline.synthetic import generate_crm

ATTRIBUTES = ("industry", "company_size", "source", "region", "product")


def descendants_rss_mib() -> float:
    """Summed RSS of every process below this one (the JVM, Spark's Python workers), MiB."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next(
            (
                int(line.split()[1]) / 1024
                for line in status.splitlines()
                if line.startswith("VmRSS")
            ),
            0.0,
        )
    return total


@contextmanager
def measured(record: dict[str, float]) -> Iterator[None]:
    """Wall seconds, driver peak RSS (VmHWM since the start) and workers' peak summed RSS."""
    reset_peak()
    peak = [descendants_rss_mib()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], descendants_rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    yield
    record["seconds"] = time.perf_counter() - started
    done.set()
    sampler.join()
    record["driver_peak_mib"] = status_mib("VmHWM")
    record["workers_peak_mib"] = peak[0]


def split_interactions(path: Path, folder: Path, files: int) -> None:
    """The interactions file as a folder of `files` Parquet files, rows in their file order."""
    interactions = pd.read_parquet(path)
    folder.mkdir()
    for part, rows in enumerate(np.array_split(np.arange(len(interactions)), files)):
        interactions.iloc[rows].to_parquet(folder / f"part-{part}.parquet", index=False)


def scoring(folder: Path, open_deals: int, partitions: int) -> dict[str, object]:
    """The local engine step by step, then the Spark engine, on the same files."""
    loaded = train_bench_model()
    shape = measure_shape(45, 8.0, 42)
    crm = write_crm(open_deals, 8.0, 45, shape, 42, folder)
    split_interactions(folder / INTERACTIONS_FILE, folder / "interactions", 8)
    data = DataConfig(
        deals=folder / DEALS_FILE, interactions=folder / INTERACTIONS_FILE, attributes=ATTRIBUTES
    )
    config = Config(data=data)
    local: dict[str, float] = {}
    steps: dict[str, float] = {}
    with measured(local):
        started = time.perf_counter()
        dataset = load_dataset(data)
        steps["read_validate_s"] = time.perf_counter() - started
        as_of = default_as_of(dataset)
        started = time.perf_counter()
        features = snapshot_features(dataset, loaded.close, open_snapshots(dataset.deals, as_of))
        scored = score_features(features, loaded.close, 100_000)
        steps["features_score_s"] = time.perf_counter() - started
        started = time.perf_counter()
        queue = rank_queue(scored, dataset, loaded, as_of, config.ranking, None)
        steps["rank_s"] = time.perf_counter() - started
        started = time.perf_counter()
        read = reason_rows(queue, config.ranking)
        rows = pd.Index(features["deal_id"]).get_indexer(queue.loc[read, "deal_id"])
        explained = explain_features(features.iloc[rows], loaded.close, 3, 100_000)
        queue = with_reasons(queue, read, explained)
        steps["reasons_s"] = time.perf_counter() - started
    spark_data = data.model_copy(update={"interactions": folder / "interactions"})
    spark_config = Config(
        data=spark_data, spark=SparkConfig(master="local[2]", partitions=partitions)
    )
    started_record: dict[str, float] = {}
    with measured(started_record):
        spark_session(spark_config.spark)
    remote: dict[str, float] = {}
    with measured(remote):
        spark_queue = build_spark_queue(spark_config, lambda: loaded, None, None).queue
    same = spark_queue["deal_id"].tolist() == queue["deal_id"].tolist()
    p_diff = float(np.abs(spark_queue["p_close"].to_numpy() - queue["p_close"].to_numpy()).max())
    return {
        "deals": crm.deals,
        "open_deals": len(queue),
        "interactions": crm.interactions,
        "local": local | steps,
        "spark_start": started_record,
        "spark": remote,
        "partitions": partitions,
        "same_ranks": same,
        "max_p_close_difference": p_diff,
    }


def training_snapshots(
    interactions: int, folder: Path
) -> tuple[Dataset, pd.DataFrame, FeatureSpec, Config]:
    """The built-in CRM at `interactions` (Parquet in `folder`), validated, its weekly training
    rows and a feature spec; the config points Spark at the interactions folder."""
    crm = generate_crm(interactions // 20, interactions, "2023-01-01", 730, 42)
    crm.deals.to_parquet(folder / DEALS_FILE, index=False)
    crm.interactions.to_parquet(folder / INTERACTIONS_FILE, index=False)
    split_interactions(folder / INTERACTIONS_FILE, folder / "interactions", 8)
    data = DataConfig(
        deals=folder / DEALS_FILE, interactions=folder / INTERACTIONS_FILE, attributes=ATTRIBUTES
    )
    dataset = load_dataset(data)
    dates = training_dates(dataset.deals, dataset.interactions, 7, 90)
    spec = FeatureSpec(
        event_types=select_event_types(dataset.interactions, dates[len(dates) // 2], 20),
        attributes=ATTRIBUTES,
        market_window_days=Config().features.market_window_days,  # as `train` builds it
    )
    config = Config(data=data.model_copy(update={"interactions": folder / "interactions"}))
    return dataset, open_deal_snapshots(dataset.deals, dates), spec, config


def training_features(folder: Path, interactions: int, partitions: int) -> dict[str, object]:
    """The training table by the local engine and by Spark, and timed buckets."""
    dataset, snapshots, spec, config = training_snapshots(interactions, folder)
    local: dict[str, float] = {}
    with measured(local):
        expected = build_features(dataset.deals, dataset.interactions, snapshots, spec)
    settings = SparkConfig(
        master="local[2]", partitions=partitions, training_features=folder / "features.parquet"
    )
    config = config.model_copy(update={"spark": settings})
    remote: dict[str, float] = {}
    with measured(remote):
        table = spark_feature_builder(config)(dataset.deals, dataset.interactions, snapshots, spec)
    numeric = expected.select_dtypes("number").columns
    difference = float(np.nanmax(np.abs(table[numeric].to_numpy() - expected[numeric].to_numpy())))
    buckets = timed_buckets(config, dataset.deals, snapshots, spec, partitions * 4)
    return {
        "interactions": len(dataset.interactions),
        "deals": len(dataset.deals),
        "snapshot_rows": len(snapshots),
        "feature_columns": len(expected.columns) - 2,
        "local": local,
        "spark": remote,
        "partitions": partitions,
        "max_feature_difference": difference,
        "buckets": buckets,
    }


def timed_bucket(
    checked: pd.DataFrame, rows: pd.DataFrame, context: FeatureContext
) -> pd.DataFrame:
    """One bucket's `features_bucket` call, reporting its events, rows and seconds."""
    started = time.perf_counter()
    features_bucket(checked, rows, context)
    return pd.DataFrame(
        {
            "events": [len(checked)],
            "rows": [len(rows)],
            "seconds": [time.perf_counter() - started],
        }
    )


def timed_buckets(
    config: Config, deals: pd.DataFrame, snapshots: pd.DataFrame, spec: FeatureSpec, buckets: int
) -> list[dict[str, float]]:
    """Per bucket: events, snapshot rows and the seconds its `build_features` call took."""
    spark = spark_session(config.spark)
    context = FeatureContext(deals, spec, pd.Index(snapshots["deal_id"].unique()))
    interactions = read_spark_table(spark, config.data.interactions)
    with checked_events(interactions, deals, config.data, buckets) as events:
        frame = map_buckets(
            spark,
            events,
            snapshots[["deal_id", "as_of"]],
            buckets,
            partial(timed_bucket, context=context),
            "events long, rows long, seconds double",
        ).toPandas()
    return [{str(k): float(v) for k, v in row.items()} for row in frame.to_dict("records")]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open-deals", type=int, default=100_000, help="scoring CRM")
    parser.add_argument("--interactions", type=int, default=1_000_000, help="training CRM")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="spark_bench_") as name:
        scored = scoring(Path(name), args.open_deals, args.partitions)
    print(json.dumps(scored, indent=1), flush=True)
    with tempfile.TemporaryDirectory(prefix="spark_bench_") as name:
        trained = training_features(Path(name), args.interactions, args.partitions)
    print(json.dumps({k: v for k, v in trained.items() if k != "buckets"}, indent=1))
    result = {
        "scoring": scored,
        "training_features": trained,
        "machine": machine_lines(load_before),
    }
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
