"""A deal's score over time, and why it changed: the features whose contributions to the
model's score moved most between two scorings, in plain words.

A change is explained with one model (the one scoring now) at both dates, from features built
at each as_of with only what was known before it: what moved is the deal's data, not the model.
`why_changed` fills the queue's column for deals whose tier changed; `run_history` is
`closeprob history DEAL_ID`, from the score table or, without one, the queues the predict runs
logged to MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from closeprob.features.build import build_features
from closeprob.features.snapshots import open_deal_snapshots
from closeprob.models.classifier import CloseModel
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.sales_reasons import sales_phrases

log = logging.getLogger(__name__)
HISTORY_COLUMNS = ["as_of", "model_version", "p_close", "tier", "rank", "expected_value"]


def describe_changes(
    before: np.ndarray,
    now: np.ndarray,
    values_before: pd.DataFrame,
    values_now: pd.DataFrame,
    phrases: Mapping[str, Callable[[object], str]],
    top: int = 2,
) -> list[str]:
    """Per row, the `top` features whose contribution moved most from `before` to `now`
    (log-odds, one column per feature in `phrases` order, sales_reasons.sales_phrases; a
    bias column after is ignored), those whose value changed first: "<then> → <now> (raised
    the score)", joined by "; "."""
    names = list(phrases)
    moved = np.asarray(now)[:, : len(names)] - np.asarray(before)[:, : len(names)]
    texts = []
    for row in range(len(moved)):
        old = [phrases[n](values_before[n].iloc[row]) for n in names]
        new = [phrases[n](values_now[n].iloc[row]) for n in names]
        order = sorted(range(len(names)), key=lambda i: (old[i] == new[i], -abs(moved[row, i])))
        picked = [i for i in order[:top] if moved[row, i] != 0]
        texts.append("; ".join(_change_text(old[i], new[i], moved[row, i]) for i in picked))
    return texts


def _change_text(old: str, new: str, moved: float) -> str:
    effect = "raised the score" if moved > 0 else "lowered the score"
    if old == new:
        return f"{new}, as before ({effect} as the rest changed)"
    return f"{old} → {new} ({effect})"


# Feature rows for snapshot rows (deal_id, as_of), in their order: `build_features` on the
# dataset's events, or the Spark engine's, which has no events on the driver.
FeaturesAt = Callable[[pd.DataFrame], pd.DataFrame]


def contributions_at(
    dataset: Dataset,
    model: CloseModel,
    deal_ids: pd.Series,
    as_of: pd.Timestamp,
    features_at: FeaturesAt | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Contributions and feature values of `deal_ids` (open at `as_of`) in that order."""
    snapshots = open_deal_snapshots(dataset.deals, pd.DatetimeIndex([as_of]))
    snapshots = snapshots[snapshots["deal_id"].isin(deal_ids)]
    features = (
        features_at(snapshots)
        if features_at is not None
        else build_features(dataset.deals, dataset.interactions, snapshots, model.spec)
    )
    features = features.set_index("deal_id").loc[list(deal_ids)].reset_index()
    return model.contributions(model.encode(features)), features


def why_changed(
    dataset: Dataset,
    model: CloseModel,
    queue: pd.DataFrame,
    previous: pd.DataFrame | None,
    features_at: FeaturesAt | None = None,
) -> pd.DataFrame:
    """The queue with `why_changed` filled for the deals whose tier changed since `previous`
    (both dates scored by `model`); empty for the others. Features are built from the
    dataset's events unless `features_at` builds them."""
    changed = queue["tier_change"].fillna("").str.contains("→")
    if previous is None or not changed.any():
        return queue
    before_at = pd.Timestamp(pd.to_datetime(previous["as_of"], utc=True).iloc[0])
    now_at = pd.Timestamp(pd.to_datetime(queue["as_of"], utc=True).iloc[0])
    deal_ids = queue.loc[changed, "deal_id"].reset_index(drop=True)
    open_before = open_deal_snapshots(dataset.deals, pd.DatetimeIndex([before_at]))["deal_id"]
    deal_ids = deal_ids[deal_ids.isin(open_before)].reset_index(drop=True)
    if deal_ids.empty:
        return queue
    before, values_before = contributions_at(dataset, model, deal_ids, before_at, features_at)
    now, values_now = contributions_at(dataset, model, deal_ids, now_at, features_at)
    texts = describe_changes(before, now, values_before, values_now, sales_phrases(model.spec))
    by_deal = pd.Series(texts, index=deal_ids.to_numpy())
    filled = queue["deal_id"].map(by_deal).fillna(queue["why_changed"]).astype(object)
    return queue.assign(why_changed=filled)
