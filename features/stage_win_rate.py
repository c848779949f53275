"""The stage's own track record: of the deals that were in a deal's current stage and whose
outcome is known at `as_of`, the share won.

A deal counts for a stage at `as_of` once both are in the past (features/point_in_time.py): it
entered the stage (its first stage-change event to that stage) before `as_of`, and it closed
before `as_of`. So an outcome, a stage change or a close at or after `as_of` changes nothing.

This is the one stage feature that reads other deals' events. `first_stage_entries` reduces each
deal's stage changes to one row per (deal, stage); the table of every deal's entries is what
a caller holding only some deals' events passes (the Spark engine computes it per bucket and
concatenates; predict from every deal's events, before it keeps the open deals').
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from closeprob.features.codes import label_codes, positions_in
from closeprob.features.point_in_time import events_before
from closeprob.features.timeline import SPAN, EventLog, as_categorical, to_seconds

ENTRY_COLUMNS = ("deal_id", "stage", "entered_at")


def first_stage_entries(interactions: pd.DataFrame, stage_type: str) -> pd.DataFrame:
    """One row per (deal_id, stage): when the deal first entered the stage (`entered_at`), from
    its stage-change events (type compared case-folded; events without a stage value skipped).
    A deal's rows read only its own events, so tables of disjoint deals concatenate."""
    # Only the columns read here are copied for the stage events (not every column).
    changes = interactions.loc[
        of_type(interactions["type"], stage_type) & interactions["value"].notna(),
        ["deal_id", "value", "occurred_at"],
    ]
    first = (
        pd.DataFrame(
            {
                "deal_id": changes["deal_id"].astype("str").to_numpy(),
                "stage": changes["value"].to_numpy(dtype=float),
                "entered_at": pd.to_datetime(changes["occurred_at"], utc=True).dt.as_unit("ns"),
            }
        )
        .groupby(["deal_id", "stage"], sort=True)["entered_at"]
        .min()
    )
    return first.reset_index()


def of_type(types: pd.Series, event_type: str) -> np.ndarray:
    """Which rows are of `event_type`, compared stripped and case-folded, as the timeline
    compares types. Decided once per distinct type (a dictionary column's categories, or Arrow's
    dictionary encoding of plain strings), never by folding 10 M strings one by one."""
    labels = label_codes(types, 1)
    if labels is None:
        labels = as_categorical(types)
    folded = pd.Index(labels.categories.astype("str")).str.strip().str.casefold()
    hit = np.append(np.asarray(folded == event_type.casefold(), dtype=bool), False)
    return hit[labels.codes]  # a missing type (code -1) takes the appended False


def stage_win_rate_features(
    deals: pd.DataFrame,
    interactions: pd.DataFrame,
    snapshots: pd.DataFrame,
    entries: pd.DataFrame,
    stage_type: str,
    prior_strength: float,
) -> pd.DataFrame:
    """One row per snapshot row (`deal_id`, `as_of`), in its order and index: `stage_win_rate`,
    the win rate of the deal's stage at `as_of` (`stage_win_rates`). `interactions` holds at
    least the rows' deals' events; `entries` every deal's `first_stage_entries`."""
    stage = current_stages(interactions, snapshots, stage_type)
    as_of = to_seconds(snapshots["as_of"])
    rate = stage_win_rates(entries, deals, stage, as_of, prior_strength)
    return pd.DataFrame({"stage_win_rate": rate}, index=snapshots.index)


def current_stages(
    interactions: pd.DataFrame, snapshots: pd.DataFrame, stage_type: str
) -> np.ndarray:
    """Per snapshot row, the value of its deal's latest stage-change event before `as_of` (NaN
    when there is none or it has no value): `current_stage` of features/stage.py."""
    changes = interactions[of_type(interactions["type"], stage_type)]
    deal_ids = pd.Index(pd.unique(snapshots["deal_id"]))
    code = deal_ids.get_indexer(pd.Index(changes["deal_id"]))
    seconds = to_seconds(changes["occurred_at"])[code >= 0]
    values = changes["value"].to_numpy(dtype=float, na_value=np.nan)[code >= 0]
    code = code[code >= 0].astype(np.int64)
    as_of = to_seconds(snapshots["as_of"])
    origin = int(min(seconds.min(initial=as_of.min()), as_of.min()))
    keys = code * SPAN + (seconds - origin)
    order = np.argsort(keys, kind="stable")  # same-second events: the later row is the latest
    keys, values = keys[order], values[order]
    query = deal_ids.get_indexer(pd.Index(snapshots["deal_id"])).astype(np.int64)
    end = np.searchsorted(keys, query * SPAN + (as_of - origin), side="left")
    first = np.searchsorted(keys, query * SPAN, side="left")
    latest = values[np.maximum(end - 1, 0)] if len(values) else np.full(len(end), np.nan)
    return np.where(end > first, latest, np.nan)


@dataclass(frozen=True)
class CodedEntries:
    """`first_stage_entries` with each deal as its position in the deals table (`deal`, −1 for
    a deal not in it), the stage value (`stage`) and `entered_at` in Unix seconds."""

    deal: np.ndarray
    stage: np.ndarray
    entered_seconds: np.ndarray


def entries_in_log(log: EventLog, stage_type: str) -> CodedEntries:
    """Every logged deal's `first_stage_entries`, from the sorted event index (types already
    stripped and case-folded there; deals coded by position): no string is read. Events are in
    (deal, time) order, so a (deal, stage) pair's first event is its entry."""
    positions = np.flatnonzero(np.asarray(log.event_type == stage_type.casefold()))
    positions = positions[~np.isnan(log.value[positions])]
    deal, values = log.keys[positions] // SPAN, log.value[positions]
    stages, stage_code = np.unique(values, return_inverse=True)
    # `return_index` gives each (deal, stage) pair's first position: its earliest event.
    first = np.unique(deal * len(stages) + stage_code, return_index=True)[1]
    entered = log.keys[positions[first]] % SPAN + log.origin
    return CodedEntries(deal[first], values[first], entered)


def stage_win_rates(
    entries: pd.DataFrame | CodedEntries,
    deals: pd.DataFrame,
    stage: np.ndarray,
    as_of_seconds: np.ndarray,
    prior_strength: float,
) -> np.ndarray:
    """Per row (its `stage` value and `as_of` in Unix seconds): the stage's smoothed win rate,
    (won + prior_strength × global) / (closed + prior_strength), over deals that entered the
    stage and closed, both before `as_of`; global is the (won + 1) / (closed + 2) of every deal
    closed before `as_of`, as for the owner's and account's. NaN where `stage` is NaN.
    `entries`: `first_stage_entries` (deal ids) or the same coded (`entries_in_log`)."""
    if isinstance(entries, pd.DataFrame):
        entries = _coded(entries, pd.Index(deals["deal_id"]))
    is_closed = (deals["closed_at"].notna() & deals["outcome"].notna()).to_numpy()
    won_by_deal = np.zeros(len(deals), dtype=bool)
    won_by_deal[is_closed] = (deals.loc[is_closed, "outcome"] == "won").to_numpy(dtype=bool)
    closed_by_deal = to_seconds(deals["closed_at"])
    counted = entries.deal >= 0
    counted[counted] = is_closed[entries.deal[counted]]
    deal = entries.deal[counted]
    known = np.maximum(entries.entered_seconds[counted], closed_by_deal[deal])
    stages = pd.Index(np.unique(entries.stage[counted]))
    n, wins = _known_counts(
        stages.get_indexer(entries.stage[counted]),
        known,
        won_by_deal[deal],
        stages.get_indexer(np.nan_to_num(stage, nan=np.inf)),
        as_of_seconds,
    )
    close_times = closed_by_deal[is_closed]
    order = np.argsort(close_times, kind="stable")
    running_wins = np.r_[0, np.cumsum(won_by_deal[is_closed][order])]
    global_n = events_before(close_times[order], as_of_seconds)
    global_rate = (running_wins[global_n] + 1.0) / (global_n + 2.0)
    rate = (wins + prior_strength * global_rate) / (n + prior_strength)
    return np.where(np.isnan(stage), np.nan, rate)


def _coded(entries: pd.DataFrame, deal_ids: pd.Index) -> CodedEntries:
    """Entries with deal ids looked up in `deal_ids` (Arrow's hash lookup for strings: pandas'
    `isin` on Arrow strings walks the ids as Python objects, 3 s at 10 M interactions)."""
    position = positions_in(deal_ids, entries["deal_id"], 1)
    if position is None:
        position = deal_ids.get_indexer(pd.Index(entries["deal_id"])).astype(np.int64)
    return CodedEntries(
        position,
        entries["stage"].to_numpy(dtype=float),
        to_seconds(entries["entered_at"]),
    )


def _known_counts(
    codes: np.ndarray,
    known_seconds: np.ndarray,
    won: np.ndarray,
    query_codes: np.ndarray,
    query_seconds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per query: items of its code known strictly before its time, and the won among them (a
    code of −1, a stage no counted deal was in, has none)."""
    origin = int(min(known_seconds.min(initial=0), query_seconds.min(initial=0)))
    keys = codes * SPAN + (known_seconds - origin)
    order = np.argsort(keys, kind="stable")
    keys, running_won = keys[order], np.r_[0, np.cumsum(won[order])]
    safe = np.maximum(query_codes, 0)
    end = np.searchsorted(keys, safe * SPAN + np.clip(query_seconds - origin, 0, SPAN - 1))
    start = np.searchsorted(keys, safe * SPAN)
    count = np.where(query_codes >= 0, end - start, 0)
    return count.astype(float), np.where(query_codes >= 0, running_won[end] - running_won[start], 0)
