"""Scoring: every deal open at `as_of` scored and ranked into the priority queue
(`build_queue`), shared by the predict job, the Spark engine and the backtest (ranking and
tiers themselves: models/ranker.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from closeprob.features.build import build_features
from closeprob.features.point_in_time import data_end
from closeprob.features.snapshots import open_deal_snapshots
from closeprob.features.stage_win_rate import first_stage_entries
from closeprob.models.account_value import add_account_value, tiers_by_account_clv
from closeprob.models.classifier import CloseModel
from closeprob.models.model_input import (
    ModelInput,
    encode_input,
    input_contributions,
    input_raw_score,
)
from closeprob.models.quotes import latest_quotes
from closeprob.models.ranker import (
    apply_capacity,
    assign_tiers,
    compare_with_previous,
    rank_deals,
    read_deals,
    urgency_factor,
)
from closeprob.models.value import deal_values
from closeprob.pipeline.account_values import queue_account_clv
from closeprob.pipeline.config import Config, RankingConfig, ValueConfig
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.dataset import rows_after
from closeprob.pipeline.errors import DataContractError, TrainingDataError
from closeprob.pipeline.history import why_changed
from closeprob.pipeline.progress import stage
from closeprob.pipeline.readable_queue import with_deal_columns
from closeprob.pipeline.registry import LoadedModel, check_model_matches
from closeprob.pipeline.sales_reasons import sales_reason_codes
from closeprob.pipeline.stages import stage_labels
from closeprob.pipeline.validate import first_ids

log = logging.getLogger(__name__)
QUEUE_COLUMNS = [
    "rank",
    "deal_id",
    "account_id",
    "owner_id",
    "stage",
    "p_close",
    "deal_value",
    "value_source",
    "expected_value",
    "tier",
    "reasons_up",
    "reasons_down",
    "p_close_change",
    "tier_change",
    "rank_change",
    "why_changed",
    "model_version",
    "as_of",
]


def default_as_of(dataset: Dataset, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The earlier of the wall clock (`now`) and the data's end: one second after the latest
    timestamp not later than `now`, so every past event is seen and a row dated in the future
    (a meeting booked for next quarter, a year typed 2030) cannot move "now" forward."""
    now = (now if now is not None else pd.Timestamp.now(tz="UTC")).floor("s")
    deals, events = dataset.deals, dataset.interactions
    times = pd.concat([deals["created_at"], deals["closed_at"], events["occurred_at"]])
    past = times[times <= now]
    if past.empty:
        return now
    return min(past.max().floor("s") + pd.Timedelta(seconds=1), now)


def far_past_the_data(dataset: Dataset, as_of: pd.Timestamp, horizon_days: int) -> str | None:
    """A warning when `as_of` lies more than one horizon after the last event: every deal
    would look idle for that long (`--as-of now` on an old export)."""
    end = data_end(dataset.deals, dataset.interactions)
    if as_of - end <= pd.Timedelta(days=horizon_days):
        return None
    return (
        f"as_of={as_of.isoformat()} is {(as_of - end).days} days after the data's last "
        f"timestamp ({end.isoformat()}), more than one horizon ({horizon_days} days): every deal "
        "will look idle since then; pass an --as-of within the data, or export fresher data"
    )


def stragglers(dataset: Dataset, as_of: pd.Timestamp, gap_days: int) -> str | None:
    """A warning when the latest rows before `as_of` lie more than `gap_days` after all the
    others and are few (at most 1 % of the rows): they alone set the default as_of (a meeting
    booked for next quarter in an old export), so every deal looks idle since the real end."""
    deals, events = dataset.deals, dataset.interactions
    stamped = pd.concat(
        [
            pd.DataFrame({"at": deals["created_at"], "deal_id": deals["deal_id"]}),
            pd.DataFrame({"at": deals["closed_at"], "deal_id": deals["deal_id"]}),
            pd.DataFrame({"at": events["occurred_at"], "deal_id": events["deal_id"]}),
        ]
    )
    stamped = stamped[stamped["at"] < as_of]
    latest = stamped["at"].nlargest(max(1, len(stamped) // 100) + 1).sort_values()
    gaps = latest.diff() > pd.Timedelta(days=gap_days)
    if not gaps.any():
        return None
    rest_end = latest.iloc[gaps.to_numpy().nonzero()[0][-1] - 1]
    late = stamped[stamped["at"] > rest_end]
    return (
        f"the default as_of ({as_of.isoformat()}) is set by {len(late)} rows dated more than "
        f"{gap_days} days after the rest of the data, which ends {rest_end.isoformat()} (first "
        f"deal_id: {first_ids(late['deal_id'])}); if they are typos or bookings ahead, fix them "
        f"or pass --as-of {(rest_end.floor('s') + pd.Timedelta(seconds=1)).isoformat()}"
    )


# Years a CRM's --as-of can mean; outside is a typo (and 3000 overflows nanosecond times).
AS_OF_RANGE = (1900, 2199)


def parse_as_of(text: str) -> pd.Timestamp:
    """A user's --as-of, as UTC whole seconds (a date means its midnight UTC)."""
    usage = "use e.g. 2024-06-01 or 2024-06-01T08:00:00+02:00"
    try:
        as_of = pd.Timestamp(text)
    except (ValueError, OverflowError):  # pandas' OutOfBoundsDatetime is a ValueError
        raise DataContractError(f"--as-of {text!r} is not a date or timestamp; {usage}") from None
    if pd.isna(as_of):
        raise DataContractError(f"--as-of {text!r} is not a time (NaT); {usage}")
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    if not AS_OF_RANGE[0] <= as_of.year <= AS_OF_RANGE[1]:
        raise DataContractError(
            f"--as-of {text!r} is in the year {as_of.year}, outside {AS_OF_RANGE[0]}–"
            f"{AS_OF_RANGE[1]}: a typo? {usage}"
        )
    return as_of.floor("s").as_unit("ns")


def open_deal_events(interactions: pd.DataFrame, deal_ids: pd.Series) -> pd.DataFrame:
    """The interactions of `deal_ids` only: a batch scores the open deals among many closed ones.

    Arrow's hash lookup (pandas' `isin` on Arrow strings builds a Python list of the ids)."""
    ids = pc.unique(pa.array(deal_ids, type=pa.string()))
    keep = pc.is_in(pa.array(interactions["deal_id"], type=pa.string()), value_set=ids)
    return interactions[keep.to_numpy(zero_copy_only=False)]


def snapshot_features(
    dataset: Dataset,
    model: CloseModel,
    snapshots: pd.DataFrame,
    threads: int | None = None,
    market: pd.Series | None = None,
    stage_entries: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """`build_features` (training's code path) for the snapshot rows, from their deals' events
    (the market level, when not given, from those of every deal open at `as_of`: the same
    figure as from all events; the stage win rate's entries, when not given, from every
    deal's events, closed ones included)."""
    spec = model.spec
    if stage_entries is None and spec.stage_history and spec.stage_win_rate:
        stage_entries = first_stage_entries(dataset.interactions, spec.stage_event_type)
    events = open_deal_events(dataset.interactions, snapshots["deal_id"])
    return build_features(dataset.deals, events, snapshots, spec, threads, market, stage_entries)


def score_features(
    features: pd.DataFrame, model: CloseModel, chunk_rows: int, inputs: ModelInput | None = None
) -> pd.DataFrame:
    """deal_id, p_close and days_quiet per feature row: one pass over the model (the raw score,
    which calibration maps to p_close) per `chunk_rows` rows. `inputs`: the rows already
    encoded (`encode_input`), else encoded here."""
    inputs = inputs if inputs is not None else encode_input(features, model)
    raw = np.concatenate(
        [
            input_raw_score(model, inputs.take(slice(start, start + chunk_rows)))
            for start in range(0, len(features), chunk_rows)
        ]
    )
    return pd.DataFrame(
        {
            "deal_id": features["deal_id"].to_numpy(),
            "p_close": model.proba_from_raw(raw),
            "days_quiet": features["days_since_last_touch"]
            .fillna(features["deal_age_days"])
            .to_numpy(),
            # A model without the stage family (no stage events in its data) has no stage.
            "stage_value": features.get(
                "current_stage", pd.Series(np.nan, index=features.index)
            ).to_numpy(dtype=float),
        }
    )


def explain_features(
    features: pd.DataFrame,
    model: CloseModel,
    reasons: int,
    chunk_rows: int,
    inputs: ModelInput | None = None,
) -> pd.DataFrame:
    """deal_id, reasons_up and reasons_down per feature row, from exact TreeSHAP
    (`pred_contrib`, the costliest step of scoring) on `chunk_rows` rows at a time.
    `inputs`: the rows already encoded, else encoded here."""
    inputs = inputs if inputs is not None else encode_input(features, model)
    up, down = [], []
    for start in range(0, len(features), chunk_rows):
        rows = slice(start, start + chunk_rows)
        chunk_up, chunk_down = sales_reason_codes(
            input_contributions(model, inputs.take(rows)),
            features.iloc[rows],
            model.spec,
            reasons,
        )
        up.append(chunk_up)
        down.append(chunk_down)
    empty = np.array([], dtype=object)
    return pd.DataFrame(
        {
            "deal_id": features["deal_id"].to_numpy(),
            "reasons_up": np.concatenate(up) if up else empty,
            "reasons_down": np.concatenate(down) if down else empty,
        }
    )


def build_queue(
    dataset: Dataset,
    loaded: LoadedModel,
    as_of: pd.Timestamp,
    ranking: RankingConfig,
    chunk_rows: int,
    previous: pd.DataFrame | None,
    value: ValueConfig | None = None,
) -> pd.DataFrame:
    """One row per deal open at `as_of`, ranked by expected value, with tiers; reasons for the
    deals people read (`ranking.reasons_for`)."""
    return build_queue_and_features(dataset, loaded, as_of, ranking, chunk_rows, previous, value)[0]


def build_queue_and_features(
    dataset: Dataset,
    loaded: LoadedModel,
    as_of: pd.Timestamp,
    ranking: RankingConfig,
    chunk_rows: int,
    previous: pd.DataFrame | None,
    value: ValueConfig | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`build_queue`, and the feature rows it scored (one per open deal; for model health)."""
    snapshots = open_snapshots(dataset.deals, as_of)
    with stage(f"scoring {len(snapshots):,} open deals"):
        features = snapshot_features(dataset, loaded.close, snapshots)
        # Encoded once: the raw score of every row and TreeSHAP of the rows people read.
        inputs = encode_input(features, loaded.close)
        scored = score_features(features, loaded.close, chunk_rows, inputs)
        queue = rank_queue(scored, dataset, loaded, as_of, ranking, previous, value)
        read = reason_rows(queue, ranking)
        if not read.any():
            return queue, features
        # In feature order (each row's reasons are its own): all rows read, nothing copied.
        rows = np.sort(pd.Index(features["deal_id"]).get_indexer(queue.loc[read, "deal_id"]))
        if len(rows) == len(features):
            chosen, chosen_inputs = features, inputs
        else:
            chosen, chosen_inputs = features.iloc[rows], inputs.take(rows)
        explained = explain_features(
            chosen, loaded.close, ranking.reasons, chunk_rows, chosen_inputs
        )
        return with_reasons(queue, read, explained), features


def open_snapshots(deals: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One (deal_id, as_of) row per deal open at `as_of`; an error when there is none."""
    snapshots = open_deal_snapshots(deals, pd.DatetimeIndex([as_of]))
    if snapshots.empty:
        raise TrainingDataError(
            f"no deal is open at as_of={as_of.isoformat()}: every deal was created at or after it "
            "or closed before it; pick a later --as-of or check 'closed_at'"
        )
    return snapshots


def reason_rows(queue: pd.DataFrame, ranking: RankingConfig) -> np.ndarray:
    """Which rows of the ranked queue get reason codes (none when `ranking.reasons` is 0)."""
    if ranking.reasons == 0:
        return np.zeros(len(queue), dtype=bool)
    if ranking.reasons_for == "all":
        return np.ones(len(queue), dtype=bool)
    return read_deals(queue["owner_id"], ranking.reasons_owner_top, ranking.reasons_top_share)


def with_reasons(queue: pd.DataFrame, read: np.ndarray, explained: pd.DataFrame) -> pd.DataFrame:
    """The queue with the reasons of its `read` rows (`explained`, one row per deal_id)."""
    by_deal = explained.set_index("deal_id")
    chosen = queue.loc[read, "deal_id"]
    up, down = queue["reasons_up"].to_numpy(copy=True), queue["reasons_down"].to_numpy(copy=True)
    up[read] = by_deal["reasons_up"].reindex(chosen).to_numpy()
    down[read] = by_deal["reasons_down"].reindex(chosen).to_numpy()
    return queue.assign(reasons_up=up, reasons_down=down)


def deal_quotes(
    interactions: pd.DataFrame, deal_ids: pd.Series, as_of: pd.Timestamp, model: CloseModel
) -> np.ndarray:
    """Per deal of `deal_ids`, in order: its latest quote before `as_of` (NaN: none)."""
    rows = pd.DataFrame({"deal_id": deal_ids.to_numpy(), "as_of": as_of})
    return latest_quotes(interactions, rows, model.spec.stage_event_type)


def deal_rows(deals: pd.DataFrame, deal_ids: pd.Series) -> pd.DataFrame:
    """The rows of `deals` for `deal_ids`, in their order (Arrow's hash lookup: about twice
    pandas' string index); an id not among the deals is a KeyError, as `.loc` gives."""
    positions = pc.index_in(
        pa.array(deal_ids, type=pa.string()),
        value_set=pa.array(deals["deal_id"], type=pa.string()),
    )
    if positions.null_count:
        missing = deal_ids[positions.is_null().to_numpy(zero_copy_only=False)]
        raise KeyError(f"deal_id not among the deals: {first_ids(missing)}")
    return deals.take(positions.to_numpy(zero_copy_only=False)).reset_index(drop=True)


def rank_queue(
    scored: pd.DataFrame,
    dataset: Dataset,
    loaded: LoadedModel,
    as_of: pd.Timestamp,
    ranking: RankingConfig,
    previous: pd.DataFrame | None,
    value: ValueConfig | None = None,
    quotes: np.ndarray | None = None,
) -> pd.DataFrame:
    """Deal values, expected value, rank, tiers, owner capacity and change since `previous`.
    With `value.source: clv`, a deal's value includes its account's CLV (value_source clv).
    `quotes`: each scored deal's latest quote before `as_of` when the caller has them (the
    Spark engine's buckets hold the events); else read from `dataset.interactions`."""
    deals = deal_rows(dataset.deals, scored["deal_id"])
    if quotes is None:
        quotes = deal_quotes(dataset.interactions, scored["deal_id"], as_of, loaded.close)
    values = deal_values(deals, loaded.value, quotes)
    value = value or ValueConfig()
    clv = np.full(len(scored), np.nan)
    if value.source == "clv" or ranking.tier_by == "account_clv":
        source = "deals"  # the Spark engine's dataset names no file
        clv = queue_account_clv(dataset.deals, scored["deal_id"], as_of, value, source)
    if value.source == "clv":
        values = add_account_value(values, clv)
    scored = scored.assign(
        account_id=deals.get("account_id"),
        owner_id=deals.get("owner_id"),
        deal_value=values["deal_value"].to_numpy(),
        value_source=values["value_source"].to_numpy(),
    )
    urgency = ranking.urgency
    weight = (
        urgency_factor(scored["days_quiet"].to_numpy(), urgency.grace_days, urgency.half_life_days)
        if urgency.enabled
        else None
    )
    queue = rank_deals(scored, weight)
    if ranking.tier_by == "account_clv":
        by_deal = pd.Series(clv, index=scored["deal_id"].to_numpy())
        account_clv = by_deal.reindex(queue["deal_id"]).to_numpy()
        tiers = tiers_by_account_clv(account_clv, ranking.a_share, ranking.b_share)
    else:
        tiers = assign_tiers(queue["expected_value"].to_numpy(), ranking.a_share, ranking.b_share)
    queue["tier"] = apply_capacity(tiers, queue["owner_id"], ranking.capacity_per_owner)
    queue = compare_with_previous(queue, previous)
    queue["reasons_up"] = queue["reasons_down"] = queue["why_changed"] = ""
    queue["stage"] = stage_labels(queue["stage_value"], loaded.close.spec.stage_names)
    queue["model_version"] = loaded.version
    queue["as_of"] = as_of
    return queue[QUEUE_COLUMNS]


def tier_summary(queue: pd.DataFrame) -> pd.DataFrame:
    """Deals, expected value and its share per tier."""
    summary = queue.groupby("tier")["expected_value"].agg(deals="size", expected_value="sum")
    summary = summary.reindex(["A", "B", "C"], fill_value=0)
    total = summary["expected_value"].sum()
    return summary.assign(share=summary["expected_value"] / total if total > 0 else 0.0)


# The queue to compare with: a queue, none, or a function of the as_of being scored (which
# is only known once the data are read: the latest partition before that day).
PreviousQueue = pd.DataFrame | Callable[[pd.Timestamp], pd.DataFrame | None] | None


def previous_at(previous: PreviousQueue, as_of: pd.Timestamp) -> pd.DataFrame | None:
    return previous(as_of) if callable(previous) else previous


def build_local_queue(
    dataset: Dataset,
    config: Config,
    loaded: LoadedModel,
    as_of_text: str | None,
    previous: PreviousQueue,
) -> pd.DataFrame:
    """`build_queue` at `as_of` (default: the end of the data) on validated data, with the
    warnings about rows it does not use."""
    return build_local_batch(dataset, config, loaded, as_of_text, previous)[0]


def build_local_batch(
    dataset: Dataset,
    config: Config,
    loaded: LoadedModel,
    as_of_text: str | None,
    previous: PreviousQueue,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`build_local_queue`, and the feature rows it scored."""

    check_model_matches(loaded.close, dataset.deals, str(config.data.deals))
    as_of = parse_as_of(as_of_text) if as_of_text else default_as_of(dataset)
    later = rows_after(dataset, as_of)
    if later:
        log.warning(
            f"dated at or after as_of={as_of.isoformat()} and not used (features see only the "
            f"past): {later}"
        )
    late = None if as_of_text else stragglers(dataset, as_of, config.snapshots.every_days)
    if late:
        log.warning(late)
    far = far_past_the_data(dataset, as_of, config.snapshots.horizon_days)
    if far:
        log.warning(far)
    before = previous_at(previous, as_of)
    queue, features = build_queue_and_features(
        dataset, loaded, as_of, config.ranking, config.predict.chunk_rows, before, config.value
    )
    queue = why_changed(dataset, loaded.close, queue, before)
    return with_deal_columns(queue, dataset.deals, list(config.predict.columns)), features
