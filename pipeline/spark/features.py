"""The training feature table on Spark (`train --engine spark`): every snapshot row featurised
in its deal's bucket by the local `build_features`, written as Parquet (`feature_table.py`) and
read back in the rows' order for LightGBM on the driver."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from closeprob.features.build import build_features
from closeprob.features.registry import categorical_features, feature_descriptions
from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.config import Config
from closeprob.pipeline.errors import ConfigError
from closeprob.pipeline.spark.buckets import check_bucket, map_buckets, run_spark
from closeprob.pipeline.spark.code import ship_closeprob_code
from closeprob.pipeline.spark.feature_table import (
    check_replaceable,
    in_row_order,
    write_folder_atomic,
)
from closeprob.pipeline.spark.market import MarketContext, spark_market_levels
from closeprob.pipeline.spark.read import check_not_empty, read_interactions
from closeprob.pipeline.spark.session import spark_session
from closeprob.pipeline.spark.stages import EntriesContext, spark_stage_entries
from closeprob.pipeline.spark.validation import checked_events, typed_events

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from closeprob.pipeline.core import FeatureBuilder


@dataclass(frozen=True)
class FeatureContext:
    """What every bucket needs to featurise training snapshot rows (see `BucketContext`)."""

    deals: pd.DataFrame
    spec: FeatureSpec
    featurised_ids: pd.Index
    market: pd.Series | None = None
    stage_entries: pd.DataFrame | None = None


def feature_schema(spec: FeatureSpec) -> str:
    """The training table's Spark schema: ids, as_of, then the features in registry order."""
    categorical = set(categorical_features(spec))
    columns = [
        f"`{name}` {'string' if name in categorical else 'double'}"
        for name in feature_descriptions(spec)
    ]
    return ", ".join(["deal_id string", "as_of timestamp", *columns])


def features_bucket(
    checked: pd.DataFrame, rows: pd.DataFrame, context: FeatureContext
) -> pd.DataFrame:
    """`build_features` for one bucket's snapshot rows, from its validated events."""
    events = typed_events(checked)
    snapshots = pd.DataFrame(
        {
            "deal_id": rows["deal_id"].astype("str").to_numpy(),
            "as_of": pd.to_datetime(rows["as_of"]).dt.tz_localize("UTC").dt.as_unit("ns"),
        }
    )
    if snapshots.empty:
        return pd.DataFrame(columns=["deal_id", "as_of", *feature_descriptions(context.spec)])
    check_bucket(events, pd.Index(snapshots["deal_id"].unique()), context.featurised_ids)
    return build_features(
        context.deals, events, snapshots, context.spec, 1, context.market, context.stage_entries
    )


def feature_rows(
    spark: SparkSession,
    events: DataFrame,
    deals: pd.DataFrame,
    snapshots: pd.DataFrame,
    spec: FeatureSpec,
    partitions: int,
) -> DataFrame:
    """The snapshot rows (deal_id, as_of) featurised from the validated `events`, bucket by
    bucket, with the market's level at their dates and every deal's stage entries: a lazy
    Spark table (`feature_schema`)."""
    dates = pd.DatetimeIndex(snapshots["as_of"].unique()).sort_values()
    market = spark_market_levels(
        spark,
        events,
        snapshots["deal_id"],
        partitions,
        MarketContext(deals, dates, spec.market_window_days, spec.market_robust),
    )
    entries = spark_stage_entries(
        spark, events, spec, partitions, EntriesContext(deals, spec.stage_event_type)
    )
    ids = pd.Index(snapshots["deal_id"].unique())
    context = FeatureContext(deals, spec, ids, market, entries)
    compute = partial(features_bucket, context=context)
    rows = snapshots[["deal_id", "as_of"]]
    return map_buckets(spark, events, rows, partitions, compute, feature_schema(spec))


def spark_feature_table(
    spark: SparkSession,
    events: DataFrame,
    deals: pd.DataFrame,
    snapshots: pd.DataFrame,
    spec: FeatureSpec,
    partitions: int,
    out: Path,
) -> pd.DataFrame:
    """`feature_rows` written to `out` as Parquet and read back in the rows' order."""
    table = feature_rows(spark, events, deals, snapshots, spec, partitions)
    run_spark(lambda: write_folder_atomic(table, out))
    return in_row_order(pd.read_parquet(out), snapshots)


def spark_features(
    spark: SparkSession,
    events: DataFrame,
    deals: pd.DataFrame,
    snapshots: pd.DataFrame,
    spec: FeatureSpec,
    partitions: int,
) -> pd.DataFrame:
    """`feature_rows` brought to the driver in the rows' order (a few rows: `build_features`
    for the deals the driver asks about, such as those whose tier changed)."""
    table = feature_rows(spark, events, deals, snapshots, spec, partitions)
    return in_row_order(run_spark(table.toPandas), snapshots)


def refuse_snapshot_ranks(spec: FeatureSpec, where: str) -> None:
    """A ConfigError when `spec` has the snapshot-rank family: it ranks each deal among every
    deal open at its as_of, which no bucket sees together (the ranks would differ by bucket)."""
    if spec.snapshot_ranks:
        raise ConfigError(
            f"{where}: features.snapshot_ranks ranks each deal among all deals open at its "
            "as_of, which the Spark engine's buckets never see together; use --engine local, "
            "or train with features.snapshot_ranks: false"
        )


def spark_feature_builder(config: Config) -> FeatureBuilder:
    """A `build_features` that computes the training table on Spark, from the interactions
    file or folder of `config.data` (read by Spark: the pandas frame it is passed is not used),
    writes it as Parquet to `config.spark.training_features` and returns it in the rows'
    order, as `build_features` does."""

    def build(
        deals: pd.DataFrame, _: pd.DataFrame, snapshots: pd.DataFrame, spec: FeatureSpec
    ) -> pd.DataFrame:
        refuse_snapshot_ranks(spec, f"train --engine spark ({config.name!r})")
        check_replaceable(config.spark.training_features)  # before any work
        spark = spark_session(config.spark)
        partitions = config.spark.partitions or spark.sparkContext.defaultParallelism
        data = config.data
        ship_closeprob_code(spark)
        interactions = read_interactions(spark, data)
        check_not_empty(interactions, deals, data, "train")
        with checked_events(interactions, deals, data, partitions) as events:
            out = config.spark.training_features
            return spark_feature_table(spark, events, deals, snapshots, spec, partitions, out)

    return build
