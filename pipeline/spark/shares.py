"""The interactions' rules about shares of the whole table (`plausibility.py`), which no bucket
can judge alone: placeholder dates, one timestamp on more than 5 % of the rows, one deal holding
more than `data.max_deal_event_share` of the events. Spark aggregates the validated events; the
driver applies the local engine's own rules to the figures, so the messages are the same."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from closeprob.pipeline.config import DataConfig
from closeprob.pipeline.plausibility import (
    PLACEHOLDER_DATES,
    SAME_STAMP_MIN_ROWS,
    dominant_deal_counts,
    placeholder_rows,
    same_stamp,
)
from closeprob.pipeline.problems import SHOWN, Problems

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def whole_table_rules(events: DataFrame, data: DataConfig, problems: Problems) -> None:
    """The share rules over every bucket's validated `events`, into `problems`, as
    `plausibility.plausible_interactions` runs them on a whole table (the first deal ids
    named may differ: a Spark table has no row order)."""
    from pyspark.sql.functions import col, count, lit, when

    source, column = str(data.interactions), "occurred_at"
    times = col(column)
    placeholder = times.isin(*[lit(day.to_pydatetime()) for day in PLACEHOLDER_DATES])
    totals = events.agg(
        count("*").alias("rows"), count(when(placeholder, 1)).alias("placeholder")
    ).toPandas()
    rows, placeholders = int(totals["rows"].iloc[0]), int(totals["placeholder"].iloc[0])
    if rows == 0:
        return
    if placeholders:
        first = events.where(placeholder).select("deal_id", column).limit(SHOWN).toPandas()
        day = utc(first[column]).iloc[0]
        placeholder_rows(placeholders, day, first["deal_id"], source, column, problems)
    if rows >= SAME_STAMP_MIN_ROWS:
        top = events.groupBy(column).count().orderBy(col("count").desc(), times).limit(1)
        commonest = top.toPandas()
        stamp = utc(commonest[column]).iloc[0]
        on_it = events.where(times == lit(stamp.to_pydatetime())).select("deal_id").limit(SHOWN)
        ids = on_it.toPandas()["deal_id"]
        same_stamp(stamp, int(commonest["count"].iloc[0]), rows, ids, source, column, problems)
    per_deal = events.groupBy("deal_id").count().toPandas()
    counts = pd.Series(per_deal["count"].to_numpy(), index=per_deal["deal_id"].to_numpy())
    dominant_deal_counts(counts.sort_values(ascending=False), data, source, problems)


def utc(times: pd.Series) -> pd.Series:
    """Timestamps as Spark hands them to pandas (UTC wall clock) as UTC times."""
    parsed = pd.to_datetime(times)
    return parsed.dt.tz_localize("UTC") if parsed.dt.tz is None else parsed.dt.tz_convert("UTC")
