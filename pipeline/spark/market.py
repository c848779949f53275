"""The market's activity level per date (features/market.py) on Spark: every bucket counts its
events in the market window of the deals open at each date; the driver sums the counts."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from closeprob.features.market import market_levels, open_deal_counts, window_event_counts
from closeprob.pipeline.config import DataConfig
from closeprob.pipeline.spark.buckets import map_buckets, run_spark, validate_bucket

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class MarketContext:
    """What every bucket needs to count its events for the market's activity level."""

    deals: pd.DataFrame
    data: DataConfig
    dates: pd.DatetimeIndex
    days: int


def market_bucket(
    raw_events: pd.DataFrame, _: pd.DataFrame, context: MarketContext
) -> pd.DataFrame:
    """Per date (by position), this bucket's events in the market window of deals open then."""
    events = validate_bucket(raw_events, context.deals, context.data)
    counts = (
        window_event_counts(context.deals, events, context.dates, context.days)
        if len(events)
        else np.zeros(len(context.dates), dtype=np.int64)
    )
    return pd.DataFrame({"position": np.arange(len(context.dates)), "events": counts})


def spark_market_levels(
    spark: SparkSession,
    interactions: DataFrame,
    deal_ids: pd.Series,
    partitions: int,
    context: MarketContext,
) -> pd.Series | None:
    """The market's activity level per date (features/market.py), from every bucket's event
    counts summed on the driver: the figure the local engine computes from all events at
    once. None when the spec has no market features."""
    if context.days <= 0:
        return None
    rows = pd.DataFrame({"deal_id": pd.Series(deal_ids).drop_duplicates().to_numpy()})
    compute = partial(market_bucket, context=context)
    schema = "position long, events long"
    buckets = map_buckets(spark, interactions, rows, partitions, compute, schema)
    counts = run_spark(buckets.toPandas).groupby("position")["events"].sum()
    events = counts.reindex(range(len(context.dates)), fill_value=0).to_numpy(dtype=np.int64)
    open_deals = open_deal_counts(context.deals, context.dates)
    return market_levels(events, open_deals, context.dates, context.days)
