"""Where the data come from: the two input tables named by the config's `data:` section, read
and validated into a `Dataset`, and the data as they stood at a time (`known_at`)."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from closeprob.features.point_in_time import closed_by, known_before
from closeprob.pipeline.config import Config, DataConfig, named_columns
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.dictionary_text import dictionary_headers
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.io import read_table
from closeprob.pipeline.plausibility import (
    listed_deals,
    plausible_deals,
    plausible_interactions,
)
from closeprob.pipeline.progress import stage
from closeprob.pipeline.stages import stage_names_as_numbers
from closeprob.pipeline.validate import (
    DEAL_COLUMNS,
    DEAL_OPTIONAL,
    INTERACTION_COLUMNS,
    INTERACTION_OPTIONAL,
    Problems,
    first_ids,
    header_key,
    map_columns,
    validate_deals,
    validate_interactions,
)
from closeprob.pipeline.values import NumberFormat, map_values

log = logging.getLogger(__name__)
Purpose = Literal["train", "predict"]


@dataclass(frozen=True)
class Inspection:
    """Both tables as read (headers mapped) and as typed, None where a file was unreadable:
    what `check` summarises even when the data have errors."""

    deals_raw: pd.DataFrame | None
    interactions_raw: pd.DataFrame | None
    deals: pd.DataFrame | None
    interactions: pd.DataFrame | None
    dataset: Dataset | None


def configured_from(named_columns: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """Deal columns the config names besides data.attributes (`config.named_columns`), as
    column -> config key: validation keeps them as text."""
    return {
        column: key
        for key, columns in named_columns.items()
        if key != "data.attributes"
        for column in columns
    }


def load_dataset(
    data: DataConfig,
    named_columns: Mapping[str, tuple[str, ...]] | None = None,
    purpose: Purpose = "train",
    now: pd.Timestamp | None = None,
) -> Dataset:
    """Deals and interactions checked against the data contract; the generator's truth if any.

    Every rule runs and every error is reported at once (one DataContractError), the columns
    the config names (`named_columns`: config key -> deal columns, `config.named_columns`)
    included; warnings are logged. With `now`, rows dated at or after it are named in a warning
    and left out.
    """
    problems = Problems(strict=False)
    with stage(f"reading and checking {data.deals.name} and {data.interactions.name}"):
        dataset = inspect_dataset(data, problems, named_columns or {}, purpose).dataset
    problems.raise_errors()
    for message in problems.warnings:
        log.warning(message)
    assert dataset is not None  # no errors: both tables were read
    return dataset if now is None else without_future(dataset, now, "now")


def load_job_data(
    config: Config, purpose: Purpose = "train", cut_at_now: bool | None = None
) -> Dataset:
    """The one read-and-check path of every job: the configured tables and named columns,
    checked by `load_dataset`. Jobs that learn or measure (train, evaluate, backtest,
    results, monitor) leave out, with a warning, rows dated at or after the wall clock (a year
    typed 2030 would otherwise move the data's end, and with it every snapshot and label);
    `predict` keeps them and its `as_of` (at most now) does the same. `cut_at_now` overrides
    the choice (monitor checks like predict, but measures)."""
    cut = purpose != "predict" if cut_at_now is None else cut_at_now
    now = pd.Timestamp.now(tz="UTC") if cut else None
    return load_dataset(config.data, named_columns(config), purpose, now=now)


def inspect_dataset(
    data: DataConfig,
    problems: Problems,
    named_columns: Mapping[str, tuple[str, ...]],
    purpose: Purpose,
) -> Inspection:
    """Both tables read, mapped and validated into `problems`; the dataset is None when a file
    could not be read at all."""
    configured = configured_from(named_columns)
    _unknown_mapping_keys(data, configured, problems)
    deals_raw = _read(data.deals, problems)
    deals = None
    if deals_raw is not None:
        deals_raw, deals = check_deals(deals_raw, data, named_columns, problems)
    labels = dictionary_headers(data.columns_for("interactions"))
    events_raw = _read(data.interactions, problems, labels)
    interactions = None
    if events_raw is not None:
        events_raw, interactions = check_interactions(events_raw, data, deals, problems)
        if len(events_raw) == 0:
            no_interactions(str(data.interactions), deals, data, purpose, problems)
    dataset = None
    if deals is not None and interactions is not None:
        truth = _read_truth(data.truth) if data.truth is not None else None
        dataset = Dataset(deals=deals, interactions=interactions, truth=truth)
    return Inspection(deals_raw, events_raw, deals, interactions, dataset)


def check_deals(
    deals_raw: pd.DataFrame,
    data: DataConfig,
    named_columns: Mapping[str, tuple[str, ...]],
    problems: Problems,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The deals table as read → mapped to the contract, validated and checked for plausibility
    into `problems`: the one path of both engines (the Spark engine reads the table with Spark,
    then calls this on the driver). The mapped raw table and the typed deals."""
    source = str(data.deals)
    configured = configured_from(named_columns)
    wanted = (*DEAL_COLUMNS, *DEAL_OPTIONAL, *data.attributes, *configured)
    deals_raw = map_columns(deals_raw, data.columns_for("deals"), wanted, source, problems)
    deals_raw = map_values(deals_raw, data.values)
    named = named_columns or {"data.attributes": data.attributes}
    check_named_columns(deals_raw, source, named, problems)
    declared = data.number_format
    deals = validate_deals(
        deals_raw,
        source,
        data.attributes,
        problems,
        configured,
        False,
        None if declared is None else NumberFormat(declared.decimal, declared.thousands),
    )
    return deals_raw, plausible_deals(deals, deals_raw, data, source, problems)


def check_interactions(
    events_raw: pd.DataFrame,
    data: DataConfig,
    deals: pd.DataFrame | None,
    problems: Problems,
    whole_table: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interactions as read (all of them, or one Spark bucket) → mapped, stage names read,
    association lists split, validated against the contract and the deals, checked for
    plausibility into `problems`: the one path of both engines. A bucket (`whole_table`
    False) skips the rules about shares of the whole table (placeholder dates, one deal's
    share of the events), which a part cannot judge. The mapped raw table and the typed
    interactions."""
    source = str(data.interactions)
    wanted = (*INTERACTION_COLUMNS, *INTERACTION_OPTIONAL)
    events_raw = map_columns(events_raw, data.columns_for("interactions"), wanted, source, problems)
    events_raw = map_values(events_raw, data.values)
    events_raw = stage_names_as_numbers(events_raw, data.stages, source, problems)
    events_raw = listed_deals(events_raw, source, problems)
    interactions = validate_interactions(
        events_raw,
        source,
        None if deals is None else deals["deal_id"],
        data.unknown_deal_interactions,
        problems,
        data.duplicate_interactions,
    )
    if len(events_raw) and deals is not None:
        interactions = plausible_interactions(
            interactions, events_raw, deals, data, source, problems, whole_table
        )
    return events_raw, interactions


def _unknown_mapping_keys(
    data: DataConfig, configured: Mapping[str, str], problems: Problems
) -> None:
    """A `data.columns` key that names no column closeprob reads would map nothing."""
    known = (
        *DEAL_COLUMNS,
        *DEAL_OPTIONAL,
        *INTERACTION_COLUMNS,
        *INTERACTION_OPTIONAL,
        *data.attributes,
        *configured,
    )
    names = list(dict.fromkeys(known))
    mapped = {**data.columns_for("deals"), **data.columns_for("interactions")}
    for key in mapped:
        if key not in known:
            problems.error(
                f"data.columns maps {key!r} (to {mapped[key]!r}), but {key!r} is neither a "
                f"contract column nor a configured attribute; use one of {names}"
            )


def check_named_columns(
    deals: pd.DataFrame,
    source: str,
    named_columns: Mapping[str, tuple[str, ...]],
    problems: Problems,
) -> None:
    """Every column a config key names is in the deals table; the message says which key, why it
    may hold a value the user did not write (defaults), and what to set instead. A header equal
    up to case and punctuation is validation's error (it names both), not repeated here."""
    found = [str(c) for c in deals.columns]
    keys = {header_key(c) for c in found}
    for key, columns in named_columns.items():
        missing = [c for c in columns if c not in found and header_key(c) not in keys]
        if not missing:
            continue
        near = difflib.get_close_matches(missing[0], found, n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        what = f"columns {missing!r}" if len(missing) > 1 else f"column {missing[0]!r}{hint}"
        instead = NAMED_COLUMN_FIX.get(key, "set it to one of them")
        problems.error(
            f"{source}: no {what}, named by {key} = {list(columns)!r} in the "
            "config (a key the config file leaves out takes configs/default.yaml's value); "
            f"the deals table has columns {found[:30]!r}. {instead}, or map the export's "
            "header onto it with data.columns"
        )


NAMED_COLUMN_FIX = {
    "data.attributes": "Set data.attributes to a list of those columns ([] for none)",
    "evaluation.segment": "Set evaluation.segment to one of them, or null for no per-segment "
    "metrics",
    "value.segment": "Set value.segment to one of them, or null to estimate missing amounts "
    "from all deals",
}


def _read(path: Path, problems: Problems, dictionary: tuple[str, ...] = ()) -> pd.DataFrame | None:
    try:
        return read_table(path, dictionary)
    except DataContractError as exc:
        problems.error(str(exc))
        return None


def no_interactions(
    source: str,
    deals: pd.DataFrame | None,
    data: DataConfig,
    purpose: Purpose,
    problems: Problems,
) -> None:
    """A header-only interactions file: every deal would look never touched."""
    if data.empty_interactions == "allow":
        return
    open_deals = 0 if deals is None else int(deals["closed_at"].isna().sum())
    if purpose == "train":
        problems.error(
            f"{source}: no interaction rows (the file has a header only); every deal would look "
            "never touched. Export the activity log with the deals, or set "
            "data.empty_interactions: allow for data with no events by nature"
        )
    else:
        problems.warn(
            f"{source}: no interaction rows (the file has a header only); all {open_deals:,} "
            "open deals score as never touched"
        )


def known_at(dataset: Dataset, as_of: pd.Timestamp) -> Dataset:
    """The data as they stood at `as_of` (`point_in_time`: dated before it is the past): deals
    created before it, closes and outcomes only if before it (a deal closed exactly at `as_of`
    is open then), interactions before it. No truth file."""
    deals = dataset.deals[known_before(dataset.deals["created_at"], as_of)]
    closed_later = ~closed_by(deals["closed_at"], as_of)
    deals = deals.assign(
        closed_at=deals["closed_at"].mask(closed_later),
        outcome=deals["outcome"].mask(closed_later),
    )
    interactions = dataset.interactions[known_before(dataset.interactions["occurred_at"], as_of)]
    return Dataset(deals=deals.reset_index(drop=True), interactions=interactions, truth=None)


def rows_after(dataset: Dataset, as_of: pd.Timestamp) -> str | None:
    """What is dated at or after `as_of` (creations, closes, interactions), counted with the
    first deal ids, or None when nothing is."""
    deals, events = dataset.deals, dataset.interactions
    closes = deals["closed_at"]
    parts = {
        "deals created": deals["deal_id"][~known_before(deals["created_at"], as_of)],
        "closes": deals["deal_id"][deals["closed_at"].notna() & ~closed_by(closes, as_of)],
        "interactions": events["deal_id"][~known_before(events["occurred_at"], as_of)],
    }
    counted = [
        f"{len(ids):,} {what} (first deal_id: {first_ids(ids)})"
        for what, ids in parts.items()
        if len(ids)
    ]
    return "; ".join(counted) or None


def without_future(dataset: Dataset, now: pd.Timestamp, what: str) -> Dataset:
    """`dataset` as known at `now`, with a warning naming what was dated later."""
    later = rows_after(dataset, now)
    if later is None:
        return dataset
    log.warning(
        f"dated at or after {what} ({now.isoformat()}) and ignored: {later}; "
        "fix the dates if these are typos"
    )
    return known_at(dataset, now)


def _read_truth(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    truth = read_table(path)
    numeric = [c for c in truth.columns if c != "deal_id"]
    return truth.astype({c: float for c in numeric})
