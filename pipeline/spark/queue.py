"""The priority queue on Spark (`predict --engine spark`): the driver reads and checks the
deals, loads the model, finds `as_of`; the workers score every open deal by bucket; the driver
ranks them with the local `rank_queue`; the workers then explain the deals people read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.config import Config, named_columns
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.history import why_changed
from closeprob.pipeline.readable_queue import with_deal_columns
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
from closeprob.pipeline.spark.code import ship_closeprob_code
from closeprob.pipeline.spark.features import refuse_snapshot_ranks, spark_features
from closeprob.pipeline.spark.health import spark_health
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
    ShippedModel,
    explain_bucket,
    score_bucket,
)
from closeprob.pipeline.spark.session import spark_session
from closeprob.pipeline.spark.stages import EntriesContext, spark_stage_entries
from closeprob.pipeline.spark.validation import checked_events

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from closeprob.models.health import BatchHealth
    from closeprob.pipeline.registry import LoadedModel


@dataclass(frozen=True)
class SparkBatch:
    """The queue, the model that scored it, the batch's health (pipeline/spark/health.py;
    None for a model without a usable health reference) and the deals read on the driver."""

    queue: pd.DataFrame
    loaded: LoadedModel
    health: BatchHealth | None
    deals: pd.DataFrame


def build_spark_queue(
    config: Config,
    load_model: Callable[[], LoadedModel],
    as_of_text: str | None,
    previous: PreviousQueue,
) -> SparkBatch:
    """The priority queue of the local engine (`build_queue`), computed on Spark, the model
    that scored it (loaded once the deals are read and validated) and the batch's health."""

    spark = spark_session(config.spark)
    partitions = config.spark.partitions or spark.sparkContext.defaultParallelism
    data = config.data
    deals = read_deals(spark, data, named_columns(config))
    loaded = load_model()
    refuse_snapshot_ranks(
        loaded.close.spec, "predict --engine spark (the model was trained with it)"
    )
    check_model_matches(loaded.close, deals, str(data.deals))
    ship_closeprob_code(spark)
    interactions = read_interactions(spark, data)
    check_not_empty(interactions, deals, data, "predict")
    with checked_events(interactions, deals, data, partitions) as events:
        explicit = parse_as_of(as_of_text) if as_of_text else None
        as_of, later_events = spark_as_of(events, deals, explicit)
        report_later(later_events, int((deals["created_at"] >= as_of).sum()), as_of)
        scoring = Scoring.at(spark, events, deals, loaded, as_of, config, partitions)
        queue = queue_of(scoring, loaded, config, previous_at(previous, as_of))
        features_of = partial(scoring.features, spec=loaded.close.spec)
        health = spark_health(spark, events, partitions, loaded.close, queue, features_of, config)
        return SparkBatch(queue, loaded, health, deals)


def queue_of(
    scoring: Scoring, loaded: LoadedModel, config: Config, previous: pd.DataFrame | None
) -> pd.DataFrame:
    """The open deals scored, ranked on the driver, the reasons of those people read and
    why the changed ones changed explained, the deal columns asked for added: the local
    engine's queue."""
    to_score = pd.Series(scoring.context.scored_ids, name="deal_id")
    deals, as_of = scoring.context.deals, scoring.context.as_of
    no_events = Dataset(deals, pd.DataFrame(), None)  # ranking reads the deals only
    scored = scoring.scores(to_score)
    quotes = scored.pop("quote").to_numpy(dtype=float)
    queue = rank_queue(
        scored, no_events, loaded, as_of, config.ranking, previous, config.value, quotes
    )
    read = reason_rows(queue, config.ranking)
    if read.any():
        reasons = scoring.reasons(queue.loc[read, "deal_id"], config.ranking.reasons)
        queue = with_reasons(queue, read, reasons)
    features_at = partial(scoring.features, spec=loaded.close.spec)
    queue = why_changed(no_events, loaded.close, queue, previous, features_at)
    return with_deal_columns(queue, deals, list(config.predict.columns))


@dataclass(frozen=True)
class Scoring:
    """The passes over the validated events at one `as_of`: scores of the open deals, reasons
    of some, feature rows of any (deal, date)."""

    spark: SparkSession
    events: DataFrame
    context: BucketContext
    partitions: int
    chunk_rows: int

    @classmethod
    def at(
        cls,
        spark: SparkSession,
        events: DataFrame,
        deals: pd.DataFrame,
        loaded: LoadedModel,
        as_of: pd.Timestamp,
        config: Config,
        partitions: int,
    ) -> Scoring:
        """The deals open at `as_of`, the market's level then, every deal's stage entries and
        the model to send."""
        to_score = open_snapshots(deals, as_of)["deal_id"]
        spec = loaded.close.spec
        at = MarketContext(
            deals, pd.DatetimeIndex([as_of]), spec.market_window_days, spec.market_robust
        )
        market = spark_market_levels(spark, events, to_score, partitions, at)
        entries = spark_stage_entries(
            spark, events, spec, partitions, EntriesContext(deals, spec.stage_event_type)
        )
        model = ShippedModel.of(loaded.close)
        context = BucketContext(deals, model, as_of, pd.Index(to_score), market, entries)
        return cls(spark, events, context, partitions, config.predict.chunk_rows)

    def scores(self, to_score: pd.Series) -> pd.DataFrame:
        """deal_id, p_close, days_quiet, stage_value, quote: one row per deal of `to_score`."""
        score = partial(score_bucket, context=self.context, chunk_rows=self.chunk_rows)
        rows = to_score.to_frame()
        buckets = map_buckets(self.spark, self.events, rows, self.partitions, score, SCORE_SCHEMA)
        return run_spark(buckets.toPandas)

    def reasons(self, chosen: pd.Series, reasons: int) -> pd.DataFrame:
        """deal_id, reasons_up, reasons_down: one row per deal of `chosen`."""
        explain = partial(
            explain_bucket,
            context=replace(self.context, scored_ids=pd.Index(chosen)),
            reasons=reasons,
            chunk_rows=self.chunk_rows,
        )
        rows = chosen.to_frame()
        schema = REASON_SCHEMA
        buckets = map_buckets(self.spark, self.events, rows, self.partitions, explain, schema)
        return run_spark(buckets.toPandas)

    def features(self, snapshots: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
        """Feature rows of `snapshots` (deal_id, as_of; any dates), in their order."""
        deals, partitions = self.context.deals, self.partitions
        return spark_features(self.spark, self.events, deals, snapshots, spec, partitions)
