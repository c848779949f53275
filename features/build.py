"""Assemble the feature frame for snapshot rows: the one code path for training and scoring."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from closeprob.features.attributes import attribute_features
from closeprob.features.calendar import calendar_features
from closeprob.features.codes import parallel_map
from closeprob.features.engagement import engagement_features, window_counts
from closeprob.features.history import history_features
from closeprob.features.market import levels_for, market_features
from closeprob.features.recency import recency_features
from closeprob.features.registry import feature_descriptions
from closeprob.features.snapshot_ranks import snapshot_rank_features
from closeprob.features.spec import FeatureSpec
from closeprob.features.stage import stage_features
from closeprob.features.stage_history import stage_history_columns
from closeprob.features.stage_win_rate import (
    CodedEntries,
    entries_in_log,
    stage_win_rates,
)
from closeprob.features.timeline import (
    Timeline,
    deal_codes,
    default_threads,
    index_events,
    make_queries,
    map_shards,
    to_seconds,
)


def build_features(
    deals: pd.DataFrame,
    interactions: pd.DataFrame,
    snapshots: pd.DataFrame,
    spec: FeatureSpec,
    threads: int | None = None,
    market: pd.Series | None = None,
    stage_entries: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per snapshot row (`deal_id`, `as_of`), features in registry order.

    Every feature of a row uses only interactions with `occurred_at < as_of`, deals closed
    before `as_of` (history), and attributes known at creation. `as_of` must be whole seconds.
    Interaction features run on deal shards in `threads` threads (default: the machine's
    cores); the result does not depend on the number. Rows come back in the snapshots' order
    and index. `market` is the market's activity level per `as_of` (features/market.py),
    computed from `deals` and `interactions` when not given (the Spark engine gives the one
    it summed over every bucket). `stage_entries` is every deal's `first_stage_entries`
    (features/stage_win_rate.py), from `interactions` when not given (a caller passing only
    some deals' events passes it).
    """
    threads = threads or default_threads()
    # The event index (~0.2 GB at 10 M interactions) lives only inside this call: it is freed
    # before the per-deal families below add their columns to the float block.
    shards, row_deals, coded_entries = _interaction_families(
        deals, interactions, snapshots, spec, threads, market, stage_entries is None
    )
    as_of_seconds = to_seconds(snapshots["as_of"])
    # The per-deal families are independent: they run side by side in threads (numpy releases
    # the GIL in their sorts and searches), each history key splitting its searches over the
    # threads left.
    inner = max(1, threads // max(1, len(spec.history_keys)))
    tasks: list[Callable[[], list[pd.DataFrame]]] = [
        *(
            partial(_history, deals, row_deals, as_of_seconds, key, spec.prior_strength, inner)
            for key in spec.history_keys
        ),
        partial(_attributes, deals, row_deals, spec.attributes),
        partial(_calendar, snapshots["as_of"], spec.calendar),
        partial(_stage_win_rate, deals, spec, stage_entries, coded_entries, shards, as_of_seconds),
    ]
    per_deal = parallel_map(lambda task: task(), tasks, threads)
    families = pd.concat([shards, *(f for frames in per_deal for f in frames)], axis=1)
    if spec.snapshot_ranks:
        ranks = snapshot_rank_features(families, snapshots["as_of"].to_numpy())
        families = pd.concat([families, ranks], axis=1)
    names = list(feature_descriptions(spec))
    # Selecting columns copies the block (GiBs at 10 M interactions): only when out of order.
    features = families if list(families.columns) == names else families[names]
    features.insert(0, "as_of", snapshots["as_of"].array)
    features.insert(0, "deal_id", snapshots["deal_id"].array)
    return features.set_axis(snapshots.index)


def _interaction_families(
    deals: pd.DataFrame,
    interactions: pd.DataFrame,
    snapshots: pd.DataFrame,
    spec: FeatureSpec,
    threads: int,
    market: pd.Series | None,
    with_entries: bool,
) -> tuple[pd.DataFrame, np.ndarray, CodedEntries | None]:
    """The families read from each deal's own events (and the market level), one row per
    snapshot row in its order, computed on deal shards in `threads` threads; each row's deal
    as a position in `deals`; and, if `with_entries` and the spec has the stage win rate, the
    deals' first stage entries (`entries_in_log`) from the same event index."""
    deal_ids = pd.Index(deals["deal_id"])
    # Each interaction's deal as an integer, once: the market level and the event index share
    # it (the index takes it over, so the market goes first).
    event_deals = deal_codes(deal_ids, interactions["deal_id"], threads)
    days = spec.market_window_days
    if days > 0 and market is None:
        market = levels_for(
            deals, interactions, snapshots["as_of"], days, event_deals, threads, spec.market_robust
        )
    log = index_events(interactions, deal_ids, threads, event_deals)
    del event_deals
    queries = make_queries(snapshots, deal_ids, log.origin, threads)
    level = _per_query(market, queries.as_of + log.origin)
    # Aligned with the sorted queries, for the interaction features.
    created_at = to_seconds(deals["created_at"].iloc[queries.deal_code]) - log.origin
    amount = deals["amount"].iloc[queries.deal_code].to_numpy(dtype=float, na_value=np.nan)

    def interaction_features(timeline: Timeline, part: slice) -> dict[str, np.ndarray]:
        counts = window_counts(timeline, spec)
        families = [
            recency_features(timeline, created_at[part], amount[part], spec.stage_event_type),
            counts,
            engagement_features(timeline, counts, spec),
            stage_features(timeline, created_at[part], spec.stage_event_type),
        ]
        if spec.stage_history:
            families.append(stage_history_columns(timeline, spec.stage_event_type))
        if days > 0:
            families.append(market_features(timeline, created_at[part], level[part], days))
        return {str(c): f[c].to_numpy(dtype=float) for f in families for c in f.columns}

    # The other families find each row's deal by position (one row per snapshot row, millions
    # at scale: integers are gathered, never strings looked up).
    shards = map_shards(log, queries, interaction_features, threads)
    entries = None
    if with_entries and spec.stage_history and spec.stage_win_rate:
        entries = entries_in_log(log, spec.stage_event_type)
    return shards, queries.caller_deal_codes(), entries


def _history(
    deals: pd.DataFrame,
    row_deals: np.ndarray,
    as_of_seconds: np.ndarray,
    key: str,
    prior_strength: float,
    threads: int,
) -> list[pd.DataFrame]:
    """The `key`'s track record per snapshot row (features/history.py)."""
    return [history_features(deals, row_deals, as_of_seconds, key, prior_strength, threads)]


def _attributes(
    deals: pd.DataFrame, row_deals: np.ndarray, attributes: tuple[str, ...]
) -> list[pd.DataFrame]:
    """The attribute family per snapshot row, normalised once per deal and gathered by the
    row's deal position (a deal's attributes are the same at every `as_of`)."""
    per_deal = attribute_features(deals[list(attributes)], attributes)
    return [per_deal.iloc[row_deals].reset_index(drop=True)]


def _calendar(as_of: pd.Series, wanted: bool) -> list[pd.DataFrame]:
    """The calendar family per snapshot row (features/calendar.py), when the spec asks for it."""
    return [calendar_features(as_of)] if wanted else []


def _stage_win_rate(
    deals: pd.DataFrame,
    spec: FeatureSpec,
    given: pd.DataFrame | None,
    coded: CodedEntries | None,
    shards: pd.DataFrame,
    as_of_seconds: np.ndarray,
) -> list[pd.DataFrame]:
    """The current stage's win rate per snapshot row (features/stage_win_rate.py), of the
    `current_stage` the shards computed, from the caller's entries (`given`) or those of the
    event index (`coded`); none when the spec has no such feature."""
    entries = given if given is not None else coded
    if not (spec.stage_history and spec.stage_win_rate) or entries is None:
        return []
    stage = shards["current_stage"].to_numpy(dtype=float)
    rate = stage_win_rates(entries, deals, stage, as_of_seconds, spec.prior_strength)
    return [pd.DataFrame({"stage_win_rate": rate})]


def _per_query(market: pd.Series | None, as_of_seconds: np.ndarray) -> np.ndarray:
    """The market level of each query's `as_of` (NaN without levels or for a date not in them)."""
    if market is None or market.empty:
        return np.full(len(as_of_seconds), np.nan)
    dates = to_seconds(pd.DatetimeIndex(market.index))
    order = np.argsort(dates)
    dates, values = dates[order], market.to_numpy(dtype=float)[order]
    position = np.clip(np.searchsorted(dates, as_of_seconds), 0, len(dates) - 1)
    return np.where(dates[position] == as_of_seconds, values[position], np.nan)
