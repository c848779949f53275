"""Events sorted by (deal, time), queried for many (deal, as_of) snapshots at once.

Each event gets one int64 key, `deal_code * SPAN + seconds`, so that "events of deal d strictly
before t" is a range of a sorted array and every window count is two `np.searchsorted` calls.
Cost grows with events + snapshot rows, never their product, and no Python loop runs over deals.
Times are whole seconds: event times are floored, `as_of` must be a whole second, which makes
`floor(occurred_at) < as_of` exactly `occurred_at < as_of`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SPAN = np.int64(1 << 34)  # seconds per deal code: about 544 years
SECONDS_PER_DAY = 86_400


def to_seconds(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Whole seconds since the Unix epoch (floored), as int64; NaT becomes the int64 minimum."""
    index = pd.DatetimeIndex(times)
    unit_per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[index.unit]
    raw = index.asi8
    seconds = np.floor_divide(raw, unit_per_second)
    return np.where(index.isna(), np.iinfo(np.int64).min, seconds)


@dataclass(frozen=True)
class EventLog:
    """Interactions coded and sorted by (deal code, time); arrays are aligned with `keys`."""

    keys: np.ndarray
    origin: int
    event_type: np.ndarray
    channel: np.ndarray
    direction: np.ndarray
    value: np.ndarray

    def subset(self, mask: np.ndarray) -> np.ndarray:
        """Keys of the events selected by `mask`, still sorted."""
        return self.keys[mask]


@dataclass(frozen=True)
class Queries:
    """Snapshot rows as search coordinates: deal code and `as_of` in seconds past the origin."""

    deal_code: np.ndarray
    as_of: np.ndarray

    def key(self, offset_seconds: int | np.ndarray = 0) -> np.ndarray:
        """Search keys for `as_of - offset_seconds`, clipped to the deal's own key range."""
        seconds = np.clip(self.as_of - offset_seconds, 0, SPAN - 1)
        return self.deal_code * SPAN + seconds

    def deal_floor(self) -> np.ndarray:
        return self.deal_code * SPAN


def index_events(interactions: pd.DataFrame, deal_ids: pd.Index) -> EventLog:
    """Code interactions by position of their deal in `deal_ids`; unknown deals are dropped."""
    codes = deal_ids.get_indexer(pd.Index(interactions["deal_id"])).astype(np.int64)
    seconds = to_seconds(interactions["occurred_at"])
    known = codes >= 0
    origin = int(seconds[known].min()) if known.any() else 0
    keys = codes[known] * SPAN + (seconds[known] - origin)
    order = np.argsort(keys, kind="stable")

    def column(name: str) -> np.ndarray:
        if name not in interactions.columns:
            return np.full(len(order), pd.NA, dtype=object)
        # pandas-stubs gap: the dtype=object overloads leave None out of `na_value`'s type,
        # though pandas accepts it (missing values become None).
        series = interactions[name]
        values = series.to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]
        return values[known][order]

    value = (
        interactions["value"].to_numpy(dtype=float, na_value=np.nan)[known][order]
        if "value" in interactions.columns
        else np.full(len(order), np.nan)
    )
    return EventLog(
        keys=keys[order],
        origin=origin,
        event_type=column("type"),
        channel=column("channel"),
        direction=column("direction"),
        value=value,
    )


def make_queries(snapshots: pd.DataFrame, deal_ids: pd.Index, origin: int) -> Queries:
    """Search coordinates for snapshot rows (`deal_id`, `as_of`)."""
    codes = deal_ids.get_indexer(pd.Index(snapshots["deal_id"])).astype(np.int64)
    return Queries(deal_code=codes, as_of=to_seconds(snapshots["as_of"]) - origin)


def count_between(
    keys: np.ndarray, queries: Queries, newest_days: float, oldest_days: float
) -> np.ndarray:
    """Events in [as_of − oldest_days, as_of − newest_days) per query; days may be inf."""
    hi = _offset_key(queries, newest_days)
    lo = _offset_key(queries, oldest_days)
    return np.searchsorted(keys, hi, side="left") - np.searchsorted(keys, lo, side="left")


def _offset_key(queries: Queries, days: float) -> np.ndarray:
    if np.isinf(days):
        return queries.deal_floor()
    return queries.key(round(days * SECONDS_PER_DAY))


def last_before(keys: np.ndarray, queries: Queries) -> tuple[np.ndarray, np.ndarray]:
    """Position of each query's latest event strictly before `as_of`, and whether it exists."""
    position = np.searchsorted(keys, queries.key(), side="left") - 1
    safe = np.maximum(position, 0)
    exists = (
        (position >= 0) & (keys[safe] // SPAN == queries.deal_code)
        if len(keys)
        else (np.zeros(len(position), dtype=bool))
    )
    return safe, exists


def days_since_last(keys: np.ndarray, queries: Queries) -> np.ndarray:
    """Days from the latest event strictly before `as_of` to `as_of`; NaN when there is none."""
    if len(keys) == 0:
        return np.full(len(queries.as_of), np.nan)
    position, exists = last_before(keys, queries)
    elapsed = queries.as_of - keys[position] % SPAN
    return np.where(exists, elapsed / SECONDS_PER_DAY, np.nan)


def sum_before(keys: np.ndarray, values: np.ndarray, queries: Queries) -> np.ndarray:
    """Sum of `values` (NaN as 0) of events strictly before `as_of`, per query."""
    cumulative = np.concatenate([[0.0], np.cumsum(np.nan_to_num(values, nan=0.0))])
    hi = np.searchsorted(keys, queries.key(), side="left")
    lo = np.searchsorted(keys, queries.deal_floor(), side="left")
    return cumulative[hi] - cumulative[lo]


def first_occurrence_keys(keys: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sorted keys of the first event of each (deal, label) pair; None labels are ignored."""
    present = pd.notna(labels)
    frame = pd.DataFrame({"key": keys[present], "label": labels[present]})
    frame["deal"] = frame["key"] // SPAN
    first = frame.groupby(["deal", "label"], sort=False)["key"].min().to_numpy()
    return np.sort(first)
