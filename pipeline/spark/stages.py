"""Every deal's stage entries on Spark, for the stage win rate (features/stage_win_rate.py):
each bucket lists its deals' `first_stage_entries`; the driver concatenates them (one row per
deal and stage) and hands the table to every bucket, as the local engine reads it from every
deal's events."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from closeprob.features.spec import FeatureSpec
from closeprob.features.stage_win_rate import first_stage_entries
from closeprob.pipeline.spark.buckets import map_buckets, run_spark
from closeprob.pipeline.spark.validation import typed_events

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class EntriesContext:
    """What every bucket needs to list its deals' stage entries."""

    deals: pd.DataFrame
    stage_type: str


def entries_bucket(checked: pd.DataFrame, _: pd.DataFrame, context: EntriesContext) -> pd.DataFrame:
    """This bucket's deals' `first_stage_entries`, the time as int64 nanoseconds (no time zone
    crosses Spark)."""
    events = typed_events(checked)
    entries = first_stage_entries(events, context.stage_type)
    return entries.assign(entered_at=entries["entered_at"].dt.as_unit("ns").astype("int64"))


def spark_stage_entries(
    spark: SparkSession,
    events: DataFrame,
    spec: FeatureSpec,
    partitions: int,
    context: EntriesContext,
) -> pd.DataFrame | None:
    """Every deal's `first_stage_entries`, each bucket's concatenated on the driver. None when
    the spec has no stage win rate."""
    if not (spec.stage_history and spec.stage_win_rate):
        return None
    compute = partial(entries_bucket, context=context)
    schema = "deal_id string, stage double, entered_at long"
    rows = context.deals[["deal_id"]]
    buckets = map_buckets(spark, events, rows, partitions, compute, schema)
    entries = run_spark(buckets.toPandas)
    entered = pd.to_datetime(entries["entered_at"].astype("int64"), unit="ns", utc=True)
    return entries.assign(deal_id=entries["deal_id"].astype("str"), entered_at=entered)
