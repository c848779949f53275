"""The input tables read by Spark and checked on the driver: the deals table (small: read
whole and validated by the local engine's path), the interactions (left in Spark; each bucket
validates its own, `buckets.py`), a header-only interactions file, and `as_of` with the count
of events at or after it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from closeprob.pipeline.config import DataConfig
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.dataset import Purpose, check_deals, no_interactions
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.problems import Problems
from closeprob.pipeline.scoring import default_as_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def read_spark_table(spark: SparkSession, path: Path) -> DataFrame:
    """Parquet (a file or a partitioned folder) or CSV (every column as text, only empty
    cells missing, as the local engine reads it); errors name the path."""
    if not path.exists():
        raise DataContractError(f"{path}: file or folder not found; check the path")
    if path.suffix.lower() == ".csv":
        return spark.read.csv(str(path), header=True, inferSchema=False, multiLine=True, escape='"')
    nanos = nanosecond_columns(path)
    if nanos:  # Spark has no nanosecond timestamps: read them as integers, then to microseconds
        spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    try:
        frame = spark.read.parquet(str(path))
    except Exception as exc:  # Spark raises AnalysisException and JVM errors alike
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataContractError(
            f"{path}: not readable as Parquet by Spark ({first}); the spark engine reads "
            "Parquet files, partitioned Parquet folders or .csv files"
        ) from None
    from pyspark.sql.functions import col, floor, timestamp_micros

    for name in nanos:
        frame = frame.withColumn(name, timestamp_micros(floor(col(name) / 1000)))
    return frame


def nanosecond_columns(path: Path) -> list[str]:
    """Columns stored as nanosecond timestamps (what pandas writes by default), from the
    Parquet schema; none when pyarrow cannot read it (Spark then says what is wrong)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        schema = ds.dataset(str(path), format="parquet").schema
    except (pa.ArrowException, OSError):
        return []
    return [
        field.name
        for field in schema
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns"
    ]


def read_deals(
    spark: SparkSession, data: DataConfig, named: Mapping[str, tuple[str, ...]]
) -> pd.DataFrame:
    """The deals table (one row per deal) read by Spark, then checked on the driver by the
    local engine's path (`dataset.check_deals`: every error at once; warnings logged)."""
    raw = read_spark_table(spark, data.deals).toPandas()
    problems = Problems(strict=False)
    _, deals = check_deals(raw, data, named, problems)
    problems.raise_errors()
    for message in problems.warnings:
        log.warning(message)
    return deals


def read_interactions(spark: SparkSession, data: DataConfig) -> DataFrame:
    """The interactions as Spark reads them, with the export's headers that `data.columns`
    maps renamed (bucketing needs `deal_id`); each bucket maps and validates the rest."""
    from pyspark.sql.functions import col, explode_outer, split, trim

    interactions = read_spark_table(spark, data.interactions)
    for target, header in data.columns_for("interactions").items():
        if header in interactions.columns and target not in interactions.columns:
            interactions = interactions.withColumnRenamed(header, target)
    if "deal_id" in interactions.columns:  # `D1;D2`: one row per deal before bucketing by deal
        ids = explode_outer(split(col("deal_id").cast("string"), ";"))
        interactions = interactions.withColumn("deal_id", ids)
        interactions = interactions.withColumn("deal_id", trim(col("deal_id")))
    return interactions


def check_not_empty(
    interactions: DataFrame, deals: pd.DataFrame, data: DataConfig, purpose: Purpose
) -> None:
    """A header-only interactions file: the local engine's error (train) or warning."""
    if interactions.limit(1).count() > 0:
        return
    problems = Problems(strict=False)
    no_interactions(str(data.interactions), deals, data, purpose, problems)
    problems.raise_errors()
    for message in problems.warnings:
        log.warning(message)


def spark_as_of(
    events: DataFrame, deals: pd.DataFrame, as_of: pd.Timestamp | None
) -> tuple[pd.Timestamp, int]:
    """`as_of` (by default the local engine's `default_as_of`: the earlier of the wall clock
    and the data's end) and the number of validated `events` at or after it."""
    from pyspark.sql.functions import col, lit

    now = pd.Timestamp.now(tz="UTC").floor("s")
    if as_of is not None:
        return as_of, events.where(col("occurred_at") >= lit(as_of.to_pydatetime())).count()
    past = events.where(col("occurred_at") <= lit(now.to_pydatetime()))
    latest = pd.to_datetime(past.agg({"occurred_at": "max"}).toPandas().iloc[:, 0])
    latest = latest.dt.tz_localize("UTC") if latest.dt.tz is None else latest
    times = pd.DataFrame({"occurred_at": latest.dropna().dt.as_unit("ns")})
    return default_as_of(Dataset(deals, times, None), now), 0


def report_later(events: int, deals: int, as_of: pd.Timestamp) -> None:
    if events or deals:
        print(
            f"note: {events:,} interactions and {deals:,} deals dated at or after "
            f"as_of={as_of.isoformat()} are not used (features see only the past)"
        )
