"""The priority queue on Spark (`predict --engine spark`): the driver reads and checks the
deals, loads the model, finds `as_of`; the workers score every open deal by bucket; the driver
ranks them with the local `rank_queue`; the workers then explain the deals people read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from closeprob.pipeline.config import Config, named_columns
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.registry import check_model_matches
from closeprob.pipeline.scoring import (
    PreviousQueue,
    open_snapshots,
    parse_as_of,
    previous_at,
    rank_queue,
    reason_rows,
    with_reasons,
)
from closeprob.pipeline.spark.buckets import map_buckets, run_spark
from closeprob.pipeline.spark.market import MarketContext, spark_market_levels
from closeprob.pipeline.spark.read import (
    check_not_empty,
    read_deals,
    read_interactions,
    report_later,
    spark_as_of,
)
from closeprob.pipeline.spark.scoring import (
    REASON_SCHEMA,
    SCORE_SCHEMA,
    BucketContext,
    explain_bucket,
    score_bucket,
)
from closeprob.pipeline.spark.session import spark_session
from closeprob.pipeline.spark.stages import EntriesContext, spark_stage_entries

if TYPE_CHECKING:
    from closeprob.pipeline.registry import LoadedModel


def build_spark_queue(
    config: Config,
    load_model: Callable[[], LoadedModel],
    as_of_text: str | None,
    previous: PreviousQueue,
) -> tuple[pd.DataFrame, LoadedModel]:
    """The priority queue of the local engine (`build_queue`), computed on Spark, and the model
    that scored it (loaded once the deals are read and validated)."""

    spark = spark_session(config.spark)
    partitions = config.spark.partitions or spark.sparkContext.defaultParallelism
    data = config.data
    deals = read_deals(spark, data, named_columns(config))
    loaded = load_model()
    check_model_matches(loaded.close, deals, str(data.deals))
    interactions = read_interactions(spark, data)
    check_not_empty(interactions, deals, data, "predict")
    explicit = parse_as_of(as_of_text) if as_of_text else None
    as_of, later_events = spark_as_of(interactions, deals, explicit, str(data.interactions))
    report_later(later_events, int((deals["created_at"] >= as_of).sum()), as_of)
    to_score = open_snapshots(deals, as_of)["deal_id"]
    spec = loaded.close.spec
    market = spark_market_levels(
        spark,
        interactions,
        to_score,
        partitions,
        MarketContext(
            deals, data, pd.DatetimeIndex([as_of]), spec.market_window_days, spec.market_robust
        ),
    )
    entries = spark_stage_entries(
        spark, interactions, spec, partitions, EntriesContext(deals, data, spec.stage_event_type)
    )
    context = BucketContext(deals, loaded.close, data, as_of, pd.Index(to_score), market, entries)
    chunk_rows = config.predict.chunk_rows
    score = partial(score_bucket, context=context, chunk_rows=chunk_rows)
    buckets = map_buckets(spark, interactions, to_score.to_frame(), partitions, score, SCORE_SCHEMA)
    scored = run_spark(buckets.toPandas)
    no_events = Dataset(deals, pd.DataFrame(), None)  # ranking reads the deals only
    before = previous_at(previous, as_of)
    queue = rank_queue(scored, no_events, loaded, as_of, config.ranking, before, config.value)
    read = reason_rows(queue, config.ranking)
    if not read.any():
        return queue, loaded
    chosen = queue.loc[read, "deal_id"]
    explain = partial(
        explain_bucket,
        context=replace(context, scored_ids=pd.Index(chosen)),
        reasons=config.ranking.reasons,
        chunk_rows=chunk_rows,
    )
    buckets = map_buckets(
        spark, interactions, chosen.to_frame(), partitions, explain, REASON_SCHEMA
    )
    return with_reasons(queue, read, run_spark(buckets.toPandas)), loaded
