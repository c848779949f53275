"""Each bucket's interactions validated once, by the local engine's path: one Spark pass turns
every bucket's raw rows into typed events (kept in Spark's cache for the passes that follow:
`as_of`, the market, the scores, the reasons, the training table) and into the problems it
found, which come back to the driver with the rules about shares of the whole table
(`shares.py`): every failing bucket's errors in one DataContractError, every warning logged on
the driver."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from closeprob.pipeline.config import DataConfig
from closeprob.pipeline.dataset import check_interactions
from closeprob.pipeline.problems import Problems
from closeprob.pipeline.spark.buckets import bucket_column, run_spark
from closeprob.pipeline.spark.shares import whole_table_rules

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

# The typed interactions as `validate.validate_interactions` gives them (the data contract).
TEXT_COLUMNS = ("deal_id", "type", "channel", "direction")
EVENT_SCHEMA = (
    "deal_id string, occurred_at timestamp, type string, channel string, direction string, "
    "value double"
)
CHECKED_SCHEMA = f"bucket long, {EVENT_SCHEMA}, level string, message string"


@dataclass(frozen=True)
class CheckContext:
    """What every bucket needs to validate its interactions: the validated deals table and
    the data contract's settings."""

    deals: pd.DataFrame
    data: DataConfig


def check_bucket_events(raw_events: pd.DataFrame, context: CheckContext) -> pd.DataFrame:
    """One bucket's interactions through `dataset.check_interactions` (the rules about shares
    of the whole table are the driver's): its typed events (none once it has an error), then
    one row per problem found (`level` error or warning, `message`)."""
    bucket = raw_events["bucket"].iloc[0] if len(raw_events) else 0
    problems = Problems(strict=False)
    _, events = check_interactions(
        raw_events.drop(columns=["bucket"]),
        context.data,
        context.deals,
        problems,
        whole_table=False,
    )
    if problems.errors:
        events = events.iloc[0:0]
    found = pd.DataFrame(
        {
            "level": ["error"] * len(problems.errors) + ["warning"] * len(problems.warnings),
            "message": problems.errors + problems.warnings,
        }
    )
    checked = pd.concat([events, found]).assign(bucket=bucket)
    # Plain objects: pyspark's Arrow conversion does not take pandas 3's Arrow-backed text.
    return checked.astype({c: object for c in (*TEXT_COLUMNS, "level", "message")})


@contextmanager
def checked_events(
    interactions: DataFrame, deals: pd.DataFrame, data: DataConfig, partitions: int
) -> Iterator[DataFrame]:
    """The interactions validated bucket by bucket, once, and cached while the block runs: the
    typed events (a `bucket` column and `EVENT_SCHEMA`). Every error found, in every bucket
    and by the rules about shares of the whole table, is raised on entry in one
    DataContractError (a problem several buckets found, once); else the warnings are logged."""
    from pyspark import StorageLevel
    from pyspark.sql.functions import col

    check = partial(check_bucket_events, context=CheckContext(deals, data))
    checked = (
        interactions.withColumn("bucket", bucket_column(partitions))
        .groupBy("bucket")
        .applyInPandas(check, CHECKED_SCHEMA)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        found = checked.where(col("level").isNotNull()).select("bucket", "level", "message")
        problems = bucket_problems(run_spark(found.toPandas).sort_values("bucket", kind="stable"))
        events = checked.where(col("level").isNull()).drop("level", "message")
        whole_table_rules(events, data, problems)
        problems.raise_errors()  # as the local engine: its warnings only when nothing failed
        for message in problems.warnings:
            log.warning(message)
        yield events
    finally:
        checked.unpersist()


def bucket_problems(found: pd.DataFrame) -> Problems:
    """The buckets' problems (`level`, `message` rows) as one `Problems`: a message several
    buckets found, once."""
    problems = Problems(strict=False)
    for level, message in found[["level", "message"]].drop_duplicates().itertuples(index=False):
        if level == "error":
            problems.error(str(message))
        else:
            problems.warn(str(message))
    return problems


def typed_events(checked: pd.DataFrame) -> pd.DataFrame:
    """A bucket's validated events as Spark hands them back, in the validator's types: text as
    `str` (missing as missing), times as UTC nanoseconds, `value` as float."""
    times = pd.to_datetime(checked["occurred_at"])
    times = times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
    return pd.DataFrame(
        {
            **{c: checked[c].astype("str").where(checked[c].notna()) for c in TEXT_COLUMNS},
            "occurred_at": times.dt.as_unit("ns"),
            "value": checked["value"].astype(float),
        }
    )[["deal_id", "occurred_at", "type", "channel", "direction", "value"]]
