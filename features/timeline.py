"""Events sorted by (deal, time), queried for many (deal, as_of) snapshots at once.

Each event gets one int64 key, `deal_code * SPAN + seconds`, so that "events of deal d strictly
before t" is a range of one sorted array. A `Timeline` finds, once per window, where each
snapshot's window starts in that array (`np.searchsorted` with the snapshots sorted the same
way, which turns the binary searches into one cache-friendly sweep); a count over any subset
of events (a type, a direction) is then the difference of that subset's running count at two
positions. Cost grows with events × subsets plus snapshot rows × windows, never their product,
and no Python loop runs over deals or snapshots. Deals are independent, so `map_shards` runs
ranges of deals in threads (numpy releases the GIL in sorts, searches and scans).

Times are whole seconds: event times are floored, `as_of` must be a whole second, which makes
`floor(occurred_at) < as_of` exactly `occurred_at < as_of`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from closeprob.features.codes import gather, label_codes, positions_in

SPAN = np.int64(1 << 34)  # seconds per deal code: about 544 years
SECONDS_PER_DAY = 86_400
PARALLEL_SORT_MIN_EVENTS = 1_000_000  # up to this, one thread sorts faster than several
SHARD_MIN_EVENTS = 200_000  # up to this, deal shards cost more in threads than they save
SHARD_MAX_EVENTS = 1_000_000  # a shard's size in memory: about 0.1 GB of columns at 10 M events


def default_threads() -> int:
    """Threads for the feature engine: the cores this process may run on (its CPU affinity,
    which a container or `taskset` narrows; not the host's count). numpy releases the GIL in
    sorts, searches and scans, so deal shards run truly in parallel."""
    return max(1, min(usable_cpus(), 16))


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask (which containers and `taskset` narrow),
    or the machine's count where the OS has no affinity call (macOS, Windows)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def to_seconds(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Whole seconds since the Unix epoch (floored), as int64; NaT becomes the int64 minimum."""
    index = pd.DatetimeIndex(times)
    unit_per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[index.unit]
    raw = index.asi8
    seconds = np.floor_divide(raw, unit_per_second)
    return np.where(index.isna(), np.iinfo(np.int64).min, seconds)


def deal_codes(deal_ids: pd.Index, values: pd.Series, threads: int = 1) -> np.ndarray:
    """Position of each value in `deal_ids` (−1 if absent): a categorical's distinct ids are
    looked up once; strings by Arrow's hash lookup on row ranges in `threads` threads."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        positions = positions_in(deal_ids, values, threads)
        if positions is not None:
            return positions
    if isinstance(values.dtype, pd.CategoricalDtype):
        categorical = values.array
        codes, uniques = categorical.codes, categorical.categories.astype("str")
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    positions = np.append(lookup(deal_ids, pd.Index(uniques)), -1)
    return positions[codes].astype(np.int64)


def lookup(deal_ids: pd.Index, values: pd.Index) -> np.ndarray:
    """`deal_ids.get_indexer(values)` for unique ids, through Arrow's hash lookup when both are
    strings (about 3× faster than pandas' on Arrow-backed strings)."""
    try:
        found = pc.index_in(pa.array(values), value_set=pa.array(deal_ids))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return deal_ids.get_indexer(values)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


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

    def slice(self, start: int, stop: int) -> EventLog:
        """Events at positions [start, stop): views, no copy."""
        return replace(
            self,
            keys=self.keys[start:stop],
            event_type=self.event_type[start:stop],
            channel=self.channel[start:stop],
            direction=self.direction[start:stop],
            value=self.value[start:stop],
        )


def index_events(
    interactions: pd.DataFrame,
    deal_ids: pd.Index,
    threads: int | None = None,
    codes: np.ndarray | None = None,
) -> EventLog:
    """Code interactions by position of their deal in `deal_ids`; unknown deals are dropped.
    `codes`: those positions when the caller has them already (`deal_codes`), handed over:
    they are overwritten (at 10 M events a copy is 80 MB more at the peak)."""
    threads = threads or default_threads()
    # In place where it can: at 10 M events every int64 temporary is 80 MB.
    keys = deal_codes(deal_ids, interactions["deal_id"], threads) if codes is None else codes
    known = keys >= 0
    every = bool(known.all())
    seconds = to_seconds(interactions["occurred_at"])
    if not every:
        keys, seconds = keys[known], seconds[known]
    origin = int(seconds.min()) if len(seconds) else 0
    keys *= SPAN
    seconds -= origin
    keys += seconds
    del seconds
    order = sort_order(keys, threads)

    def labels(name: str) -> pd.Categorical:
        if name not in interactions.columns:
            missing = np.full(len(order), -1, dtype=np.int8)
            return pd.Categorical.from_codes(missing, categories=pd.Index([], dtype="str"))
        column = label_codes(interactions[name], threads)
        if column is None:
            column = as_categorical(interactions[name])
        if name == "type":
            column = casefold_categories(column)
        return pd.Categorical.from_codes(kept(column.codes), dtype=column.dtype)

    def kept(values: np.ndarray) -> np.ndarray:
        return gather(values if every else values[known], order, threads)

    value = (
        kept(interactions["value"].to_numpy(dtype=float, na_value=np.nan))
        if "value" in interactions.columns
        else np.full(len(order), np.nan)
    )
    return EventLog(
        keys=gather(keys, order, threads),
        origin=origin,
        event_type=labels("type"),
        channel=labels("channel"),
        direction=labels("direction"),
        value=value,
    )


def sort_order(keys: np.ndarray, parts: int) -> np.ndarray:
    """`np.argsort(keys, kind="stable")`, computed as `parts` key ranges sorted in threads."""
    if parts <= 1 or len(keys) <= PARALLEL_SORT_MIN_EVENTS:
        return np.argsort(keys, kind="stable")
    sample = keys[:: max(1, len(keys) // 10_000)]
    cuts = np.unique(np.quantile(sample, np.linspace(0, 1, parts + 1)[1:-1], method="lower"))
    bounds = [None, *cuts, None]

    def sort_part(number: int) -> np.ndarray:
        low, high = bounds[number], bounds[number + 1]
        inside = np.ones(len(keys), dtype=bool) if low is None else keys >= low
        if high is not None:
            inside &= keys < high
        rows = np.flatnonzero(inside)  # ascending, so equal keys keep their order
        return rows[np.argsort(keys[rows], kind="stable")]

    with ThreadPoolExecutor(parts) as pool:
        return np.concatenate(list(pool.map(sort_part, range(len(cuts) + 1))))


def casefold_categories(column: pd.Categorical) -> pd.Categorical:
    """Interaction types compared case-folded ('EMAIL_OUT' is 'email_out'): spellings that
    differ only by case become one category. Works on the categories, not on every row."""
    folded = pd.Index(column.categories.astype("str")).str.strip().str.casefold()
    if folded.equals(pd.Index(column.categories.astype("str"))):
        return column
    unique = pd.Index(pd.unique(folded))
    mapping = np.append(unique.get_indexer(folded), -1).astype(np.int64)
    return pd.Categorical.from_codes(mapping[column.codes], categories=unique)


def as_categorical(values: pd.Series) -> pd.Categorical:
    """Labels as a categorical of strings; a categorical column (Parquet dictionary) is reused."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categorical = values.array
        return categorical.rename_categories(categorical.categories.astype("str"))
    return pd.Categorical(values)


@dataclass(frozen=True)
class Queries:
    """Snapshot rows as search coordinates: deal code and `as_of` in seconds past the origin.

    Build them with `make_queries`, which sorts them by (deal code, as_of): the binary searches
    then walk the event keys in order and stay in cache (measured: 0.2 s for 3.7 M queries
    into 10 M keys, against 7 s in random order, and 1.9 s in snapshot order, one ascending
    run per date), and deal shards are contiguous slices. `order` maps them back (sorted row
    i is the caller's row `order[i]`); it is None when the caller's rows were already sorted.
    `map_shards` puts its results back in the caller's order.
    """

    deal_code: np.ndarray
    as_of: np.ndarray
    order: np.ndarray | None

    def key(self, offset_seconds: int | np.ndarray = 0) -> np.ndarray:
        """Search keys for `as_of - offset_seconds`, clipped to the deal's own key range."""
        seconds = np.clip(self.as_of - offset_seconds, 0, SPAN - 1)
        return self.deal_code * SPAN + seconds

    def deal_floor(self) -> np.ndarray:
        return self.deal_code * SPAN

    def caller_deal_codes(self) -> np.ndarray:
        """Deal codes in the caller's row order."""
        if self.order is None:
            return self.deal_code
        codes = np.empty_like(self.deal_code)
        codes[self.order] = self.deal_code
        return codes

    def slice(self, start: int, stop: int) -> Queries:
        """Rows [start, stop) of sorted queries (`order` no longer applies: None)."""
        return Queries(self.deal_code[start:stop], self.as_of[start:stop], None)


def make_queries(
    snapshots: pd.DataFrame, deal_ids: pd.Index, origin: int, threads: int = 1
) -> Queries:
    """Search coordinates for snapshot rows (`deal_id`, `as_of`), sorted by (deal, as_of)
    (coded and sorted in `threads` threads).

    Every row's `deal_id` must be in `deal_ids`: a code of −1 would index the last deal.
    """
    codes = deal_codes(deal_ids, snapshots["deal_id"], threads)
    unknown = codes < 0
    if unknown.any():
        first = pd.unique(snapshots["deal_id"].to_numpy()[unknown])[:5].tolist()
        raise ValueError(
            f"snapshots: {int(unknown.sum())} row(s) have a deal_id not in the deals table "
            f"(first: {first!r}); build snapshots from the same deals table "
            "(open_deal_snapshots) or add those deals"
        )
    as_of = to_seconds(snapshots["as_of"]) - origin
    keys = codes * SPAN + np.clip(as_of, 0, SPAN - 1)
    if np.count_nonzero(keys[1:] < keys[:-1]) == 0:
        return Queries(deal_code=codes, as_of=as_of, order=None)
    # Rows with an as_of before the first event tie on their clipped key: any order among
    # them gives the same values, as every row is searched on its own.
    order = sort_order(keys, threads)
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
        at = {days: running[self.bound(days)] for days in {d for w in windows for d in w}}
        return [(at[new] - at[old]).astype(float) for new, old in windows]

    def total(self, values: np.ndarray) -> np.ndarray:
        """Sum of `values` (NaN as 0) over each query's events strictly before `as_of`.

        A running sum per deal, restarting at each deal's first event (not a difference of
        one running sum over all deals): a deal's total is its own events added in time
        order, so it never picks up float rounding from other deals' values, later ones
        included, and training (all deals' events) and predict (open deals only) agree to
        the last bit."""
        if len(values) == 0:
            return np.zeros(len(self.queries.as_of))
        money = pd.Series(np.nan_to_num(values, nan=0.0))
        running = money.groupby(self.log.keys // SPAN, sort=False).cumsum().to_numpy()
        end = self.bound(0)
        return np.where(end > self.bound(np.inf), running[np.maximum(end - 1, 0)], 0.0)

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


def map_shards(
    log: EventLog,
    queries: Queries,
    compute: Callable[[Timeline, slice], dict[str, np.ndarray]],
    threads: int,
) -> pd.DataFrame:
    """`compute(timeline, rows)` (named float columns) on deal-range shards in threads, as one
    frame with rows in the caller's order (before `make_queries` sorted them).

    Deals are independent, and both events and queries are sorted by deal, so a range of deal
    codes is a contiguous slice of each. There are two shards per thread (more on a large
    log), of about the same number of events; `rows` is the shard's slice of the sorted
    queries, for arrays aligned with them. Each shard's columns are written straight into one
    float block at the caller's row positions by the shard's own thread as soon as it is done,
    so at most the block and a few shards are in memory at once.
    """
    shards = 1
    if len(queries.as_of) > 0 and len(log.keys) > SHARD_MIN_EVENTS:
        # At least two per thread; more on large logs, so that a shard's columns in flight
        # (every feature of its rows, twice while its families are framed) stay small.
        shards = max(2 * threads, -(-len(log.keys) // SHARD_MAX_EVENTS))
    cuts = np.array([], dtype=np.int64)
    if shards > 1:
        firsts = log.keys[np.linspace(0, len(log.keys), shards, endpoint=False).astype(int)]
        cuts = np.unique(firsts // SPAN)[1:]
    event_cuts = [0, *np.searchsorted(log.keys, cuts * SPAN), len(log.keys)]
    query_cuts = [0, *np.searchsorted(queries.deal_code, cuts), len(queries.as_of)]
    positions = np.arange(len(queries.as_of)) if queries.order is None else queries.order

    made: dict[str, np.ndarray] = {}  # the block, allocated by the first shard done
    names: list[str] = []
    allocating = threading.Lock()

    def run(shard: int) -> None:
        rows = slice(query_cuts[shard], query_cuts[shard + 1])
        events = log.slice(event_cuts[shard], event_cuts[shard + 1])
        columns = compute(Timeline(events, queries.slice(rows.start, rows.stop)), rows)
        with allocating:
            if not made:
                names.extend(columns)
                made["block"] = np.empty((len(names), len(queries.as_of)))
        # Shards own disjoint rows, so each writes its part in its own thread.
        for row, name in enumerate(names):
            made["block"][row, positions[rows]] = columns[name]

    with ThreadPoolExecutor(max(1, threads)) as pool:
        for done in as_completed([pool.submit(run, shard) for shard in range(len(cuts) + 1)]):
            done.result()
    block = made["block"]
    return pd.DataFrame(block.T, columns=names, copy=False)


def running_count(mask: np.ndarray) -> np.ndarray:
    """Selected events before each position: `running[i]` counts mask[:i]."""
    running = np.zeros(len(mask) + 1, dtype=np.int32)
    np.cumsum(mask, dtype=np.int32, out=running[1:])
    return running
