"""Events sorted by (deal, time), queried for many (deal, as_of) snapshots at once.

Each event gets one int64 key, `deal_code * SPAN + seconds`, so that "events of deal d strictly
before t" is a range of one sorted array. A `Timeline` finds, once per window, where each
snapshot's window starts in that array (`np.searchsorted` with the snapshots sorted the same
way, which turns the binary searches into one cache-friendly sweep); a count over any subset
of events (a type, a direction) is then the difference of that subset's running count at two
positions. Cost grows with events × subsets plus snapshot rows × windows, never their product,
and no Python loop runs over deals or snapshots.

Times are whole seconds: event times are floored, `as_of` must be a whole second, which makes
`floor(occurred_at) < as_of` exactly `occurred_at < as_of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def deal_codes(deal_ids: pd.Index, values: pd.Series) -> np.ndarray:
    """Position of each value in `deal_ids` (−1 if absent), factorising repeated ids only once."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    positions = np.append(deal_ids.get_indexer(pd.Index(uniques)), -1)
    return positions[codes].astype(np.int64)


@dataclass(frozen=True)
class EventLog:
    """Interactions coded and sorted by (deal code, time); arrays are aligned with `keys`.

    Labels are categoricals: comparing one with a string compares small integer codes.
    """

    keys: np.ndarray
    origin: int
    event_type: pd.Categorical
    channel: pd.Categorical
    direction: pd.Categorical
    value: np.ndarray


def index_events(interactions: pd.DataFrame, deal_ids: pd.Index) -> EventLog:
    """Code interactions by position of their deal in `deal_ids`; unknown deals are dropped."""
    codes = deal_codes(deal_ids, interactions["deal_id"])
    seconds = to_seconds(interactions["occurred_at"])
    known = codes >= 0
    origin = int(seconds[known].min()) if known.any() else 0
    keys = codes[known] * SPAN + (seconds[known] - origin)
    order = np.argsort(keys, kind="stable")

    def labels(name: str) -> pd.Categorical:
        if name not in interactions.columns:
            return pd.Categorical(np.full(len(order), None, dtype=object))
        column = pd.Categorical(interactions[name].astype("string"))
        return column[np.flatnonzero(known)[order]]

    value = (
        interactions["value"].to_numpy(dtype=float, na_value=np.nan)[known][order]
        if "value" in interactions.columns
        else np.full(len(order), np.nan)
    )
    return EventLog(
        keys=keys[order],
        origin=origin,
        event_type=labels("type"),
        channel=labels("channel"),
        direction=labels("direction"),
        value=value,
    )


@dataclass(frozen=True)
class Queries:
    """Snapshot rows as search coordinates: deal code and `as_of` in seconds past the origin.

    Build them with `make_queries`, which sorts them by (deal code, as_of); `order` maps the
    sorted rows back: sorted row i is the caller's row `order[i]`.
    """

    deal_code: np.ndarray
    as_of: np.ndarray
    order: np.ndarray

    def key(self, offset_seconds: int | np.ndarray = 0) -> np.ndarray:
        """Search keys for `as_of - offset_seconds`, clipped to the deal's own key range."""
        seconds = np.clip(self.as_of - offset_seconds, 0, SPAN - 1)
        return self.deal_code * SPAN + seconds

    def deal_floor(self) -> np.ndarray:
        return self.deal_code * SPAN

    def restore(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows computed in sorted order, put back in the caller's order."""
        inverse = np.empty_like(self.order)
        inverse[self.order] = np.arange(len(self.order))
        return frame.take(inverse).reset_index(drop=True)


def make_queries(snapshots: pd.DataFrame, deal_ids: pd.Index, origin: int) -> Queries:
    """Search coordinates for snapshot rows (`deal_id`, `as_of`), sorted by (deal, as_of)."""
    codes = deal_codes(deal_ids, snapshots["deal_id"])
    as_of = to_seconds(snapshots["as_of"]) - origin
    order = np.lexsort((as_of, codes))
    return Queries(deal_code=codes[order], as_of=as_of[order], order=order)


@dataclass
class Timeline:
    """An event log and its queries, with the position of every window bound found once.

    `bound(days)` is, per query, the position in `log.keys` of the deal's first event at or after
    `as_of − days` (days may be inf: the deal's first event). Events of a query's deal in
    [as_of − oldest, as_of − newest) are the positions [bound(oldest), bound(newest)).
    """

    log: EventLog
    queries: Queries
    _bounds: dict[float, np.ndarray] = field(default_factory=dict, repr=False)

    def bound(self, days: float) -> np.ndarray:
        if days not in self._bounds:
            target = (
                self.queries.deal_floor()
                if np.isinf(days)
                else self.queries.key(round(days * SECONDS_PER_DAY))
            )
            self._bounds[days] = np.searchsorted(self.log.keys, target, side="left")
        return self._bounds[days]

    def count(self, mask: np.ndarray | None, newest: float, oldest: float) -> np.ndarray:
        """Events selected by `mask` (all if None) in [as_of − oldest, as_of − newest), as float."""
        return self.counts(mask, [(newest, oldest)])[0]

    def counts(
        self, mask: np.ndarray | None, windows: list[tuple[float, float]]
    ) -> list[np.ndarray]:
        """`count` for several (newest, oldest) windows, sharing one running count of `mask`."""
        if mask is None:
            return [(self.bound(new) - self.bound(old)).astype(float) for new, old in windows]
        running = running_count(mask)
        return [
            (running[self.bound(new)] - running[self.bound(old)]).astype(float)
            for new, old in windows
        ]

    def total(self, values: np.ndarray) -> np.ndarray:
        """Sum of `values` (NaN as 0) over each query's events strictly before `as_of`."""
        running = np.concatenate([[0.0], np.cumsum(np.nan_to_num(values, nan=0.0))])
        return running[self.bound(0)] - running[self.bound(np.inf)]

    def last(self, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Position of each query's latest event selected by `mask` before `as_of`; exists?"""
        before = self.bound(0) - 1
        if mask is None:
            latest = before
        else:
            marked = np.where(mask, np.arange(len(mask)), -1)
            latest = np.maximum.accumulate(marked)[np.maximum(before, 0)] if len(mask) else before
            latest = np.where(before >= 0, latest, -1)
        exists = latest >= self.bound(np.inf)
        return np.maximum(latest, 0), exists

    def days_since_last(self, mask: np.ndarray | None) -> np.ndarray:
        """Days from the latest selected event strictly before `as_of`; NaN when there is none."""
        if len(self.log.keys) == 0:
            return np.full(len(self.queries.as_of), np.nan)
        position, exists = self.last(mask)
        elapsed = self.queries.as_of - self.log.keys[position] % SPAN
        return np.where(exists, elapsed / SECONDS_PER_DAY, np.nan)

    def distinct_before(self, labels: pd.Categorical) -> np.ndarray:
        """Distinct non-missing labels among each query's events strictly before `as_of`."""
        deal = self.log.keys // SPAN
        codes = np.asarray(labels.codes, dtype=np.int64)
        pair = deal * (len(labels.categories) + 1) + codes
        first = ~pd.Series(pair).duplicated().to_numpy() & (codes >= 0)
        return self.count(first, 0, np.inf)


def running_count(mask: np.ndarray) -> np.ndarray:
    """Selected events before each position: `running[i]` counts mask[:i]."""
    running = np.zeros(len(mask) + 1, dtype=np.int64)
    np.cumsum(mask, out=running[1:])
    return running
