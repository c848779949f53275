"""What a Spark worker computes for one bucket of open deals, from its validated events
(`validation.py`): the local engine's features (`snapshot_features`), then its scores
(`score_features`) or its reasons (`explain_features`).

The model travels to the workers as its native files' contents (the JSON document and
LightGBM's model text, `models/native.py`), never as a pickled object, and is rebuilt once per
worker process, after its sha256 is checked."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pandas as pd

from closeprob.models.classifier import CloseModel
from closeprob.models.native import booster_text, close_model_document, close_model_from_document
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.model_artifact import ModelIntegrityError
from closeprob.pipeline.scoring import (
    deal_quotes,
    explain_features,
    score_features,
    snapshot_features,
)
from closeprob.pipeline.spark.buckets import check_bucket
from closeprob.pipeline.spark.validation import typed_events

SCORE_SCHEMA = "deal_id string, p_close double, days_quiet double, stage_value double, quote double"
REASON_SCHEMA = "deal_id string, reasons_up string, reasons_down string"
BUILT: dict[str, CloseModel] = {}  # per worker process: the models rebuilt, by sha256


@dataclass(frozen=True)
class ShippedModel:
    """A classifier as the text of its native files (model.json, booster.txt) and their
    sha256: what is sent to the workers in place of the object."""

    document: str
    booster: str
    sha256: str

    @classmethod
    def of(cls, model: CloseModel) -> ShippedModel:
        document = json.dumps(close_model_document(model), allow_nan=False)
        booster = booster_text(model.booster)
        return cls(document, booster, text_digest(document, booster))

    def build(self) -> CloseModel:
        """The classifier, its text checked first, rebuilt once per process."""
        found = text_digest(self.document, self.booster)
        if found != self.sha256:
            raise ModelIntegrityError(
                f"the model sent to this Spark worker changed on the way (sha256 "
                f"{found[:12]}…, sent {self.sha256[:12]}…); it was not loaded"
            )
        if self.sha256 not in BUILT:
            BUILT[self.sha256] = close_model_from_document(json.loads(self.document), self.booster)
        return BUILT[self.sha256]


def text_digest(*texts: str) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class BucketContext:
    """What every bucket needs besides its own events: the validated deals table, the model,
    `as_of`, the deals scored in this pass (all buckets), the market's level and every deal's
    stage entries. Pickled
    once with the function (Spark broadcasts a large one)."""

    deals: pd.DataFrame
    model: ShippedModel
    as_of: pd.Timestamp
    scored_ids: pd.Index
    market: pd.Series | None = None
    stage_entries: pd.DataFrame | None = None


def bucket_features(
    checked: pd.DataFrame, deal_ids: pd.Series, context: BucketContext
) -> pd.DataFrame | None:
    """This bucket's validated events → `build_features` (through the local engine's
    `snapshot_features`) for `deal_ids`, this bucket's deals to score (None if it has none)."""
    ids = pd.Index(deal_ids.astype("str"))
    if ids.empty:
        return None
    events = typed_events(checked)
    check_bucket(events, ids, context.scored_ids)
    snapshots = pd.DataFrame({"deal_id": ids.sort_values().to_numpy(), "as_of": context.as_of})
    dataset = Dataset(context.deals, events, None)
    model = context.model.build()
    return snapshot_features(dataset, model, snapshots, 1, context.market, context.stage_entries)


def score_bucket(
    checked: pd.DataFrame, to_score: pd.DataFrame, context: BucketContext, chunk_rows: int
) -> pd.DataFrame:
    """deal_id, p_close, days_quiet, stage_value for one bucket's deals (the local
    `score_features`), and quote: each deal's latest quote before as_of (the bucket holds all
    of its events), which `rank_queue` values it by as the local engine does."""

    features = bucket_features(checked, to_score["deal_id"], context)
    if features is None:
        columns = ("deal_id", "p_close", "days_quiet", "stage_value", "quote")
        return pd.DataFrame({column: [] for column in columns})
    model = context.model.build()
    scored = score_features(features, model, chunk_rows)
    events = typed_events(checked)
    quotes = deal_quotes(events, scored["deal_id"], context.as_of, model)
    return scored.assign(quote=quotes)


def explain_bucket(
    checked: pd.DataFrame,
    to_explain: pd.DataFrame,
    context: BucketContext,
    reasons: int,
    chunk_rows: int,
) -> pd.DataFrame:
    """deal_id, reasons_up, reasons_down for one bucket's deals: the local `explain_features`."""

    features = bucket_features(checked, to_explain["deal_id"], context)
    if features is None:
        return pd.DataFrame({"deal_id": [], "reasons_up": [], "reasons_down": []})
    return explain_features(features, context.model.build(), reasons, chunk_rows)
