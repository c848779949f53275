"""Bucketing by deal: every event of a deal and its deal's rows hashed into one bucket, a
function called once per bucket (`map_buckets`), and a closeprob error raised in a worker
brought back to the driver as itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from closeprob.pipeline.errors import CloseprobError, DataContractError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

T = TypeVar("T")


def bucket_column(partitions: int) -> Any:
    """The bucket of a row's deal: a hash of the deal id as the data contract reads it (text,
    trimmed), so every event of a deal and its deal's row share one bucket."""
    from pyspark.sql.functions import col, lit, pmod, trim, xxhash64

    return pmod(xxhash64(trim(col("deal_id").cast("string"))), lit(partitions))


def map_buckets(
    spark: SparkSession,
    interactions: DataFrame,
    rows: pd.DataFrame,
    partitions: int,
    compute: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame],
    schema: str,
) -> DataFrame:
    """`compute(events, rows)` once per bucket of deals, lazily: `rows` (a `deal_id` column, and
    any others) are cogrouped with the events of the same bucket, so a bucket that has rows but
    no events is still called. Run it with `run_spark`."""
    bucket = bucket_column(partitions)
    events = interactions.withColumn("bucket", bucket)
    deals = spark.createDataFrame(rows.assign(deal_id=rows["deal_id"].astype("str")))
    deals = deals.withColumn("bucket", bucket)
    return events.groupBy("bucket").cogroup(deals.groupBy("bucket")).applyInPandas(compute, schema)


def check_bucket(events: pd.DataFrame, ids: pd.Index, everywhere: pd.Index) -> None:
    """Both sides are bucketed by one hash of the same text; check that it held (no event of a
    deal featurised in this pass lies outside its deal's bucket), so that no row can ever be
    computed without some of its deal's events."""
    elsewhere = events["deal_id"].isin(everywhere) & ~events["deal_id"].isin(ids)
    if elsewhere.any():
        raise RuntimeError(
            f"bucketing error: events of deal {events.loc[elsewhere, 'deal_id'].iloc[0]!r} are "
            "not in the bucket of the deal's rows"
        )


def run_spark(action: Callable[[], T]) -> T:
    """Run a Spark action; a closeprob error raised in a worker comes back as itself."""
    try:
        return action()
    except Exception as exc:  # a worker's error arrives wrapped in the JVM's
        raise worker_error(exc) from None


def worker_error(exc: Exception) -> Exception:
    """A closeprob error raised in a worker, as itself (its message intact, with the problem
    lines that follow it when it lists several); else `exc`."""
    lines = str(exc).splitlines()
    for number in range(len(lines) - 1, -1, -1):
        for kind in (DataContractError, CloseprobError):
            prefix = f"{kind.__module__}.{kind.__name__}: "
            if lines[number].startswith(prefix):
                listed = [lines[number].removeprefix(prefix)]
                for line in lines[number + 1 :]:
                    if not line.startswith("  - "):
                        break
                    listed.append(line)
                return kind("\n".join(listed))
    return exc
