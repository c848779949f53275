"""What a Spark worker computes for one bucket of open deals: its events validated, the local
engine's features (`snapshot_features`), then its scores (`score_features`) or its reasons
(`explain_features`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from closeprob.models.classifier import CloseModel
from closeprob.pipeline.config import DataConfig
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.scoring import explain_features, score_features, snapshot_features
from closeprob.pipeline.spark.buckets import check_bucket, validate_bucket

SCORE_SCHEMA = "deal_id string, p_close double, days_quiet double, stage_value double"
REASON_SCHEMA = "deal_id string, reasons_up string, reasons_down string"


@dataclass(frozen=True)
class BucketContext:
    """What every bucket needs besides its own events: the validated deals table, the model,
    the data contract's settings, `as_of`, and the deals scored in this pass (all buckets).
    Pickled once with the function (Spark broadcasts a large one)."""

    deals: pd.DataFrame
    model: CloseModel
    data: DataConfig
    as_of: pd.Timestamp
    scored_ids: pd.Index
    market: pd.Series | None = None
    stage_entries: pd.DataFrame | None = None


def bucket_features(
    raw_events: pd.DataFrame, deal_ids: pd.Series, context: BucketContext
) -> pd.DataFrame | None:
    """This bucket's events, validated as the local engine does, → `build_features` (through the
    local engine's `snapshot_features`) for `deal_ids`, this bucket's deals to score (None if
    it has none: its events are still validated)."""

    events = validate_bucket(raw_events, context.deals, context.data)
    ids = pd.Index(deal_ids.astype("str"))
    if ids.empty:
        return None
    check_bucket(events, ids, context.scored_ids)
    snapshots = pd.DataFrame({"deal_id": ids.sort_values().to_numpy(), "as_of": context.as_of})
    dataset = Dataset(context.deals, events, None)
    return snapshot_features(
        dataset, context.model, snapshots, 1, context.market, context.stage_entries
    )


def score_bucket(
    raw_events: pd.DataFrame, to_score: pd.DataFrame, context: BucketContext, chunk_rows: int
) -> pd.DataFrame:
    """deal_id, p_close, days_quiet for one bucket's deals: the local `score_features`."""

    features = bucket_features(raw_events, to_score["deal_id"], context)
    if features is None:
        return pd.DataFrame({"deal_id": [], "p_close": [], "days_quiet": [], "stage_value": []})
    return score_features(features, context.model, chunk_rows)


def explain_bucket(
    raw_events: pd.DataFrame,
    to_explain: pd.DataFrame,
    context: BucketContext,
    reasons: int,
    chunk_rows: int,
) -> pd.DataFrame:
    """deal_id, reasons_up, reasons_down for one bucket's deals: the local `explain_features`."""

    features = bucket_features(raw_events, to_explain["deal_id"], context)
    if features is None:
        return pd.DataFrame({"deal_id": [], "reasons_up": [], "reasons_down": []})
    return explain_features(features, context.model, reasons, chunk_rows)
