"""The market's activity level per date (features/market.py) on Spark: every bucket counts its
deals' events in the market window of each date they are open; the driver adds the tables."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from closeprob.features.market import market_levels, open_deal_counts, window_touch_counts
from closeprob.pipeline.spark.buckets import map_buckets, run_spark
from closeprob.pipeline.spark.validation import typed_events

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class MarketContext:
    """What every bucket needs to count its events for the market's activity level."""

    deals: pd.DataFrame
    dates: pd.DatetimeIndex
    days: int
    robust: bool = True


def market_bucket(checked: pd.DataFrame, _: pd.DataFrame, context: MarketContext) -> pd.DataFrame:
    """Per date (by position) and count, how many of this bucket's deals open then logged that
    many events in the market window (`window_touch_counts`)."""
    events = typed_events(checked)
    return window_touch_counts(context.deals, events, context.dates, context.days)


def spark_market_levels(
    spark: SparkSession,
    events: DataFrame,
    deal_ids: pd.Series,
    partitions: int,
    context: MarketContext,
) -> pd.Series | None:
    """The market's activity level per date (features/market.py), from every bucket's table of
    counts of its validated `events` added on the driver: the figure the local engine computes
    from all events at once. None when the spec has no market features."""
    if context.days <= 0:
        return None
    rows = pd.DataFrame({"deal_id": pd.Series(deal_ids).drop_duplicates().to_numpy()})
    compute = partial(market_bucket, context=context)
    schema = "position long, touches long, deals long"
    buckets = map_buckets(spark, events, rows, partitions, compute, schema)
    touches = run_spark(buckets.toPandas)
    open_deals = open_deal_counts(context.deals, context.dates)
    return market_levels(touches, open_deals, context.dates, context.days, context.robust)
