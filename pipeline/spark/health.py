"""Model health of a batch scored on Spark (`predict --engine spark`): the measures of the local
engine (models/health.py) on what the driver can hold. The score's PSI and the expected ROC-AUC
and wins come from every open deal's p_close; the interactions' types are counted by the workers,
bucket by bucket, from the validated events; the feature PSIs come from the feature rows of a
uniform sample of the open deals (`spark.health_sample_deals`, all of them when there are fewer),
whose chance thresholds are those of the sample's size. With every open deal in the sample the
figures are the local engine's."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from closeprob.models.classifier import CloseModel
from closeprob.models.health import (
    BatchHealth,
    batch_type_counts,
    health_window_days,
    measure_batch,
    unusable_reference,
)
from closeprob.pipeline.config import Config
from closeprob.pipeline.spark.buckets import map_buckets, run_spark
from closeprob.pipeline.spark.validation import typed_events

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
TYPE_COUNT_SCHEMA = "type string, events long"


@dataclass(frozen=True)
class TypeWindow:
    """The interactions counted: those of the bucket's batch deals in [as_of − days, as_of)."""

    as_of: pd.Timestamp
    days: int


def type_counts_bucket(
    checked: pd.DataFrame, rows: pd.DataFrame, window: TypeWindow
) -> pd.DataFrame:
    """One bucket's interactions of its batch deals in the window, counted by type."""
    events = typed_events(checked)
    counts = batch_type_counts(events, rows["deal_id"].astype("str"), window.as_of, window.days)
    return pd.DataFrame(
        {"type": counts.index.astype("str"), "events": counts.to_numpy(dtype="int64")}
    )


def spark_type_counts(
    spark: SparkSession,
    events: DataFrame,
    deal_ids: pd.Series,
    partitions: int,
    window: TypeWindow,
) -> pd.Series:
    """The batch deals' interactions in the window counted by type, over every bucket."""
    count = partial(type_counts_bucket, window=window)
    rows = deal_ids.rename("deal_id").to_frame()
    buckets = map_buckets(spark, events, rows, partitions, count, TYPE_COUNT_SCHEMA)
    counted = run_spark(buckets.toPandas)
    return counted.groupby("type")["events"].sum().sort_values(ascending=False)


def health_sample(deal_ids: pd.Series, size: int, seed: int) -> pd.Series:
    """A uniform sample of `size` deals (all of them when there are no more), in queue order;
    the same for the same deals and seed."""
    if len(deal_ids) <= size:
        return deal_ids.reset_index(drop=True)
    chosen = np.random.default_rng(seed).choice(len(deal_ids), size=size, replace=False)
    return deal_ids.iloc[np.sort(chosen)].reset_index(drop=True)


def spark_health(
    spark: SparkSession,
    events: DataFrame,
    partitions: int,
    model: CloseModel,
    queue: pd.DataFrame,
    features_of: Callable[[pd.DataFrame], pd.DataFrame],
    config: Config,
) -> BatchHealth | None:
    """The batch's health (None for a model without a usable reference, said on the console):
    `features_of` featurises (deal_id, as_of) rows on Spark."""
    unusable = unusable_reference(model.reference)
    if unusable is not None or model.reference is None:
        log.info(f"health: not measured ({unusable})")
        return None
    as_of = pd.Timestamp(queue["as_of"].iloc[0])
    deal_ids = queue["deal_id"].astype("str")
    window = TypeWindow(as_of, health_window_days(model.spec.windows_days))
    counts = spark_type_counts(spark, events, deal_ids, partitions, window)
    sample = health_sample(deal_ids, config.spark.health_sample_deals, config.seed)
    if len(sample) < len(deal_ids):
        log.info(
            f"health: feature PSIs from a uniform sample of {len(sample):,} of the "
            f"{len(deal_ids):,} open deals (spark.health_sample_deals)"
        )
    features = features_of(pd.DataFrame({"deal_id": sample, "as_of": as_of}))
    return measure_batch(
        model.reference,
        features,
        queue["p_close"].to_numpy(dtype=float),
        counts,
        as_of,
        config.health.psi_warn,
        config.health.noise_alpha,
    )
