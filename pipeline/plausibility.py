"""Plausibility, not only schema: data that pass the contract but cannot be right, reported with
counts and first ids at `check`, `train` and `predict` (they all read through
`dataset.inspect_dataset`).

- placeholder dates (1900-01-01, 1970-01-01, Excel's 1899-12-30 at midnight) are errors; one
  timestamp on more than 5 % of the rows is a warning;
- interactions before their deal's creation: kept or dropped (`data.events_before_creation`),
  counted either way;
- amounts: all zero (a warning); a `currency` column with several currencies and no
  `data.currency_rates` (an error: sums across currencies are meaningless), converted with them;
- one deal holding more than `data.max_deal_event_share` of the interactions (a warning: one
  runaway integration moves every other deal's market features);
- interaction deal ids that match the deals' only after stripping leading zeros or a `.0` (an
  error naming the id format as the likely cause).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from closeprob.pipeline.config import DataConfig
from closeprob.pipeline.headers import header_key
from closeprob.pipeline.problems import Problems, first_ids
from closeprob.pipeline.validate import deal_positions, is_known
from closeprob.pipeline.values import split_id_lists

PLACEHOLDER_DATES = tuple(
    pd.Timestamp(day, tz="UTC") for day in ("1900-01-01", "1970-01-01", "1899-12-30", "1899-12-31")
)
SAME_STAMP_SHARE, SAME_STAMP_MIN_ROWS = 0.05, 40
# A deal is flagged only well above the typical deal too (small data sets are lumpy).
DOMINANT_OVER_MEDIAN = 20


def placeholder_dates(
    times: pd.Series, ids: pd.Series, source: str, column: str, problems: Problems
) -> None:
    """Errors for placeholder dates; a warning for one timestamp on > 5 % of the rows."""
    placeholder = times.isin(PLACEHOLDER_DATES)
    if placeholder.any():
        placeholder_rows(
            int(placeholder.sum()),
            times[placeholder].iloc[0],
            ids[placeholder],
            source,
            column,
            problems,
        )
    present = times.dropna()
    if len(present) < SAME_STAMP_MIN_ROWS or not _one_stamp_dominates(present):
        return
    counts = present.value_counts()
    stamp = counts.index[0]
    same_stamp(
        stamp, int(counts.iloc[0]), len(present), ids[times == stamp], source, column, problems
    )


def _one_stamp_dominates(present: pd.Series) -> bool:
    """Whether the commonest timestamp is on more than 5 % of the rows (`same_stamp`'s rule),
    from Arrow's mode of the times: counting them by hash (pandas' `value_counts`) costs about
    ten times as much at 10 M rows, and is left to the rare table that warns."""
    values = present.to_numpy(dtype="datetime64[ns]").view(np.int64)
    count = int(pc.mode(pa.array(values))[0]["count"].as_py())
    return count > SAME_STAMP_SHARE * len(present) and count > 1


def placeholder_rows(
    count: int, first: pd.Timestamp, ids: pd.Series, source: str, column: str, problems: Problems
) -> None:
    """The error for `count` rows on placeholder dates (`first` of them, `ids` their deals)."""
    problems.error(
        f"{source}: column {column!r} holds placeholder dates in {count} "
        f"rows (first: {str(first.date())!r}, deal_id "
        f"{first_ids(ids)}); a deal cannot date from then: fix the dates or "
        "leave them empty where the column allows it"
    )


def same_stamp(
    stamp: pd.Timestamp,
    count: int,
    present: int,
    ids: pd.Series,
    source: str,
    column: str,
    problems: Problems,
) -> None:
    """A warning when the commonest timestamp `stamp` (on `count` of `present` rows, `ids`
    their deals) is on more than 5 % of the rows (whole tables of at least 40 rows)."""
    if present < SAME_STAMP_MIN_ROWS or not (count > SAME_STAMP_SHARE * present and count > 1):
        return
    problems.warn(
        f"{source}: column {column!r} has the same timestamp {str(stamp)!r} on {count:,} of "
        f"{present:,} rows ({count / present:.0%}; first deal_id "
        f"{first_ids(ids)}): a default filled in by an import? Features "
        "read it as when those rows happened"
    )


def currency_amounts(
    deals: pd.DataFrame, deals_raw: pd.DataFrame, data: DataConfig, source: str, problems: Problems
) -> pd.DataFrame:
    """`deals` with amounts in one currency: a `currency` column with several currencies needs
    `data.currency_rates` (an error without), which converts each amount by its rate."""
    column = next((c for c in deals_raw.columns if header_key(c) == "currency"), None)
    if column is None or len(deals_raw) != len(deals):
        return deals
    currency = deals_raw[column].astype("str").str.strip().str.upper()
    currency = currency.where(deals_raw[column].notna() & (currency != ""))
    counts = currency.value_counts()
    if len(counts) <= 1 and not data.currency_rates:
        return deals
    shown = ", ".join(f"{c!r} {n:,} deals" for c, n in counts.head(5).items())
    if not data.currency_rates:
        problems.error(
            f"{source}: column {column!r} holds {len(counts)} currencies ({shown}); amounts in "
            "different currencies cannot be added or ranked together: set data.currency_rates "
            "(one reporting currency: {USD: 1.0, EUR: 1.08, JPY: 0.0067, …})"
        )
        return deals
    rates = {k.upper(): v for k, v in data.currency_rates.items()}
    unknown = currency.notna() & ~currency.isin(list(rates)) & deals["amount"].notna()
    if unknown.any():
        problems.error(
            f"{source}: column {column!r} has currencies missing from data.currency_rates in "
            f"{int(unknown.sum())} deals (first: {currency[unknown].iloc[0]!r}, deal_id "
            f"{first_ids(deals.loc[unknown, 'deal_id'])}); add their rates"
        )
    rate = currency.map(rates).astype(float).to_numpy()
    return deals.assign(amount=(deals["amount"] * rate).where(currency.notna(), deals["amount"]))


def zero_amounts(deals: pd.DataFrame, source: str, problems: Problems) -> None:
    amount = deals["amount"].dropna()
    if len(amount) >= 2 and (amount == 0).all():
        problems.warn(
            f"{source}: column 'amount' is 0 on every one of the {len(amount):,} deals that "
            "declare it: expected values would all be 0. Leave unknown amounts empty (they "
            "are then estimated) or export the real values"
        )


def events_before_creation(
    interactions: pd.DataFrame,
    deals: pd.DataFrame,
    data: DataConfig,
    source: str,
    problems: Problems,
    position: np.ndarray | None = None,
) -> pd.DataFrame:
    """Interactions dated before their deal was created: counted, and dropped or kept.
    `position`: each interaction's deal's position in `deals` (`deal_positions`), if known."""
    if position is None:
        position = deal_positions(interactions["deal_id"], deals["deal_id"])
    utc = deals["created_at"].astype("datetime64[ns, UTC]").dt.tz_convert(None).to_numpy()
    creations = np.append(utc, np.datetime64("NaT", "ns"))  # position -1 (no deal) reads NaT
    created = pd.Series(creations[position], index=interactions.index).dt.tz_localize("UTC")
    early = (interactions["occurred_at"] < created).fillna(False).astype(bool)
    if not early.any():
        return interactions
    gap = (created[early] - interactions.loc[early, "occurred_at"]).dt.days.max()
    kept = data.events_before_creation == "keep"
    problems.warn(
        f"{source}: {int(early.sum()):,} interactions are dated before their deal was created "
        f"(up to {gap} days; first deal_id {first_ids(interactions.loc[early, 'deal_id'])}); "
        + (
            "kept: they count in the deal's features (data.events_before_creation: drop to "
            "leave them out)"
            if kept
            else "dropped (data.events_before_creation: drop)"
        )
    )
    return interactions if kept else interactions[~early].reset_index(drop=True)


def dominant_deals(
    interactions: pd.DataFrame,
    data: DataConfig,
    source: str,
    problems: Problems,
    position: np.ndarray | None = None,
) -> None:
    """`dominant_deal_counts` of the interactions' deal ids. With every row's deal `position`
    known (`deal_positions`), the counts are first taken by position (`np.bincount`; counting
    10 M id strings by hash costs about ten times as much), and the ids counted only when a
    deal is flagged, so the warning is the same."""
    if position is not None and len(position) and (position >= 0).all():
        per_deal = np.bincount(position)
        if not _flagged(pd.Series(per_deal[per_deal > 0]), data).any():
            return
    dominant_deal_counts(interactions["deal_id"].value_counts(), data, source, problems)


def _flagged(counts: pd.Series, data: DataConfig) -> pd.Series:
    """Which deals (their event `counts`) hold more than `data.max_deal_event_share` of the
    interactions and more than DOMINANT_OVER_MEDIAN times the median deal's."""
    share = counts / counts.sum()
    return (share > data.max_deal_event_share) & (counts > DOMINANT_OVER_MEDIAN * counts.median())


def dominant_deal_counts(
    counts: pd.Series, data: DataConfig, source: str, problems: Problems
) -> None:
    """A warning for deals holding more than `data.max_deal_event_share` of the interactions
    (and far more than the median deal); `counts`: events per deal id, most first."""
    if counts.empty:
        return
    share = counts / counts.sum()
    flagged = counts[_flagged(counts, data)]
    if flagged.empty:
        return
    top = str(flagged.index[0])
    problems.warn(
        f"{source}: deal {top!r} holds {int(flagged.iloc[0]):,} of {int(counts.sum()):,} "
        f"interactions ({share[top]:.0%}; the median deal has {counts.median():g}); "
        f"{len(flagged)} deal{'s' * (len(flagged) > 1)} above data.max_deal_event_share "
        f"{data.max_deal_event_share:.0%}: a runaway integration or a test deal? Remove them"
    )


def _id_key(ids: pd.Series) -> pd.Series:
    """An id as a number-minded export may have rewritten it: no leading zeros, no '.0'."""
    text = ids.astype("str").str.strip().str.replace(r"\.0+$", "", regex=True)
    return text.str.lstrip("0").replace("", "0")


def id_format_mismatch(
    events_raw: pd.DataFrame, deals: pd.DataFrame, source: str, problems: Problems
) -> None:
    """An error when interaction deal ids missing from the deals table match it once leading
    zeros and '.0' are stripped: the id format, not missing deals, is the likely cause."""
    if "deal_id" not in events_raw.columns or deals["deal_id"].isna().all():
        return
    raw = events_raw["deal_id"].dropna().astype("str")
    # Each distinct id once: nearly always every one is a known deal, and nothing is missing.
    distinct = pd.Series(raw.unique(), dtype="str").str.strip()
    if is_known(distinct, deals["deal_id"]).all():
        return
    raw = raw.str.strip()
    missing = raw[~is_known(raw, deals["deal_id"])]
    if missing.empty:
        return
    keys = _id_key(deals["deal_id"].dropna())
    by_key = pd.Series(deals["deal_id"].dropna().to_numpy(), index=keys.to_numpy())
    by_key = by_key[~by_key.index.duplicated()]
    matched = _id_key(missing).map(by_key)
    if matched.notna().any():
        first = matched.notna().to_numpy().argmax()
        problems.error(
            f"{source}: {int(matched.notna().sum()):,} interaction deal ids match a deal only "
            f"after stripping leading zeros or '.0' (first: {missing.iloc[first]!r} for deal "
            f"{matched.iloc[first]!r}): the likely cause is an id written as a number by one of "
            "the exports (Excel, a float Parquet column). Export the ids as text in both files"
        )


def plausible_deals(
    deals: pd.DataFrame, deals_raw: pd.DataFrame, data: DataConfig, source: str, problems: Problems
) -> pd.DataFrame:
    """The deals' plausibility rules; amounts converted to one currency when rates are set."""
    for column in ("created_at", "closed_at"):
        placeholder_dates(deals[column], deals["deal_id"], source, column, problems)
    deals = currency_amounts(deals, deals_raw, data, source, problems)
    zero_amounts(deals, source, problems)
    return deals


def plausible_interactions(
    interactions: pd.DataFrame,
    events_raw: pd.DataFrame,
    deals: pd.DataFrame,
    data: DataConfig,
    source: str,
    problems: Problems,
    whole_table: bool = True,
) -> pd.DataFrame:
    """The interactions' plausibility rules; those before creation dropped if so configured.
    Deals without an id or with a repeated one (errors already) are left out of the lookups.
    Rules about shares of the whole table run only on the whole table."""
    deals = deals.dropna(subset=["deal_id"]).drop_duplicates("deal_id")
    if deals.empty:
        return interactions
    id_format_mismatch(events_raw, deals, source, problems)
    if interactions.empty:
        return interactions
    # Each interaction's deal, looked up once for the two rules that need it.
    position = deal_positions(interactions["deal_id"], deals["deal_id"])
    if whole_table:
        placeholder_dates(
            interactions["occurred_at"], interactions["deal_id"], source, "occurred_at", problems
        )
        dominant_deals(interactions, data, source, problems, position)
    return events_before_creation(interactions, deals, data, source, problems, position)


def listed_deals(events: pd.DataFrame, source: str, problems: Problems) -> pd.DataFrame:
    """Interactions whose `deal_id` lists several deals (`12;34`, as CRMs export associations)
    as one row per deal, counted in a warning; a row whose list holds no id stays, empty, for
    validation to name."""
    if "deal_id" not in events.columns or (
        events["deal_id"].dtype.kind not in "OTU"
        and not (pd.api.types.is_string_dtype(events["deal_id"].dtype))
    ):
        return events
    listed = events["deal_id"].astype("str").str.contains(";", regex=False).fillna(False)
    if not listed.any():
        return events
    split = split_id_lists(events[listed], "deal_id")
    problems.warn(
        f"{source}: {int(listed.sum()):,} interactions list several deals in 'deal_id' (first: "
        f"{events.loc[listed, 'deal_id'].iloc[0]!r}): split into {len(split):,} rows, one per "
        "deal"
    )
    return pd.concat([events[~listed], split], ignore_index=True)


def missing_stage_type(interactions: pd.DataFrame, stage_type: str) -> str | None:
    """A warning when interactions exist but none is of `features.stage_event_type` (compared
    case-folded, as features compare types): the stage features would all be empty."""
    kinds = interactions["type"].dropna().astype("str").str.strip().str.casefold()
    if kinds.empty or (kinds == stage_type.casefold()).any():
        return None
    common = ", ".join(repr(k) for k in kinds.value_counts().index[:8])
    return (
        f"no interaction is of features.stage_event_type {stage_type!r}: the stage features "
        f"(current stage, days in stage, moves) will be empty. The types found: {common}; set "
        "features.stage_event_type to the one that records stage changes, if any"
    )
