"""Where scoring is: the batch job (`run_predict`) scores every deal open at `as_of` and ranks
them into the priority queue (ranking and tiers themselves: models/ranker.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.features.build import build_features
from closeprob.features.registry import feature_descriptions
from closeprob.features.snapshots import data_end, open_deal_snapshots
from closeprob.models.classifier import CloseModel
from closeprob.models.ranker import (
    apply_capacity,
    assign_tiers,
    compare_with_previous,
    rank_deals,
    reason_codes,
    urgency_factor,
)
from closeprob.models.value import deal_values
from closeprob.pipeline.config import Config, RankingConfig, named_columns
from closeprob.pipeline.dataset import Dataset
from closeprob.pipeline.errors import DataContractError, TrainingDataError
from closeprob.pipeline.registry import LoadedModel

QUEUE_COLUMNS = [
    "rank",
    "deal_id",
    "account_id",
    "owner_id",
    "p_close",
    "deal_value",
    "value_source",
    "expected_value",
    "tier",
    "reasons_up",
    "reasons_down",
    "p_close_change",
    "tier_change",
    "model_version",
    "as_of",
]


def default_as_of(dataset: Dataset) -> pd.Timestamp:
    """The end of the data: one second after the latest timestamp, so every event is seen."""
    return data_end(dataset.deals, dataset.interactions).floor("s") + pd.Timedelta(seconds=1)


def parse_as_of(text: str) -> pd.Timestamp:
    """A user's --as-of, as UTC whole seconds (a date means its midnight UTC)."""
    try:
        as_of = pd.Timestamp(text)
    except ValueError:
        raise DataContractError(
            f"--as-of {text!r} is not a date or timestamp; use e.g. 2024-06-01 or "
            "2024-06-01T08:00:00+02:00"
        ) from None
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    return as_of.floor("s")


def after_as_of(dataset: Dataset, as_of: pd.Timestamp) -> tuple[int, int]:
    """Interactions and deal creations at or after `as_of`: the queue ignores them."""
    events = int((dataset.interactions["occurred_at"] >= as_of).sum())
    deals = int((dataset.deals["created_at"] >= as_of).sum())
    return events, deals


def score_snapshots(
    dataset: Dataset, model: CloseModel, snapshots: pd.DataFrame, chunk_rows: int, reasons: int
) -> pd.DataFrame:
    """p_close and reason codes per snapshot row.

    Features come from `build_features`, the code path training uses, for all rows at once
    (its cost is linear in events plus rows). The booster then runs once per `chunk_rows` rows:
    its contributions give the reason codes, and their row sums the raw score that calibration
    maps to p_close, so memory for contributions stays bounded by the chunk. With `reasons` 0
    the booster's raw score is used directly and the reason columns are empty.
    """
    # Only the scored deals' events: a batch scores the open deals among many closed ones.
    interactions = dataset.interactions
    events = interactions[interactions["deal_id"].isin(snapshots["deal_id"].unique())]
    features = build_features(dataset.deals, events, snapshots, model.spec)
    described = feature_descriptions(model.spec)
    parts = []
    for start in range(0, len(features), chunk_rows):
        chunk = features.iloc[start : start + chunk_rows]
        encoded = model.encode(chunk)
        if reasons > 0:
            contributions = model.contributions(encoded)
            raw = contributions.sum(axis=1)
            up, down = reason_codes(contributions, chunk, described, reasons)
        else:  # no reason codes asked for: skip TreeSHAP, the costliest step of scoring
            raw = np.asarray(model.booster.predict(encoded, raw_score=True))
            up = down = np.full(len(chunk), "", dtype=object)
        parts.append(
            pd.DataFrame(
                {
                    "deal_id": chunk["deal_id"].to_numpy(),
                    "p_close": model.proba_from_raw(raw),
                    "reasons_up": up,
                    "reasons_down": down,
                    "days_quiet": chunk["days_since_last_touch"]
                    .fillna(chunk["deal_age_days"])
                    .to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def build_queue(
    dataset: Dataset,
    loaded: LoadedModel,
    as_of: pd.Timestamp,
    ranking: RankingConfig,
    chunk_rows: int,
    previous: pd.DataFrame | None,
) -> pd.DataFrame:
    """One row per deal open at `as_of`, ranked by expected value, with tiers and reasons."""
    scored = score_open_deals(dataset, loaded.close, as_of, chunk_rows, ranking.reasons)
    return rank_queue(scored, dataset, loaded, as_of, ranking, previous)


def score_open_deals(
    dataset: Dataset, model: CloseModel, as_of: pd.Timestamp, chunk_rows: int, reasons: int
) -> pd.DataFrame:
    """p_close and reason codes for every deal open at `as_of`."""
    snapshots = open_deal_snapshots(dataset.deals, pd.DatetimeIndex([as_of]))
    if snapshots.empty:
        raise TrainingDataError(
            f"no deal is open at as_of={as_of.isoformat()}: every deal was created at or after it "
            "or closed at or before it; pick a later --as-of or check 'closed_at'"
        )
    return score_snapshots(dataset, model, snapshots, chunk_rows, reasons)


def rank_queue(
    scored: pd.DataFrame,
    dataset: Dataset,
    loaded: LoadedModel,
    as_of: pd.Timestamp,
    ranking: RankingConfig,
    previous: pd.DataFrame | None,
) -> pd.DataFrame:
    """Deal values, expected value, rank, tiers, owner capacity and change since `previous`."""
    deals = dataset.deals.set_index("deal_id").loc[scored["deal_id"]].reset_index()
    values = deal_values(deals, loaded.value)
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
    tiers = assign_tiers(queue["expected_value"].to_numpy(), ranking.a_share, ranking.b_share)
    queue["tier"] = apply_capacity(tiers, queue["owner_id"], ranking.capacity_per_owner)
    queue = compare_with_previous(queue, previous)
    queue["model_version"] = loaded.version
    queue["as_of"] = as_of
    return queue[QUEUE_COLUMNS]


def tier_summary(queue: pd.DataFrame) -> pd.DataFrame:
    """Deals, expected value and its share per tier."""
    summary = queue.groupby("tier")["expected_value"].agg(deals="size", expected_value="sum")
    summary = summary.reindex(["A", "B", "C"], fill_value=0)
    total = summary["expected_value"].sum()
    return summary.assign(share=summary["expected_value"] / total if total > 0 else 0.0)


def run_predict(
    config: Config, as_of_text: str | None, model_uri: str | None, out: Path | None
) -> None:
    """The `predict` job: load the model, score the open deals, write the queue, log the run."""
    from closeprob.pipeline.dataset import load_dataset
    from closeprob.pipeline.io import read_previous_queue, write_table
    from closeprob.pipeline.registry import check_model_matches, load_registered_model
    from closeprob.pipeline.report import print_queue_summary
    from closeprob.pipeline.runs import log_prediction_run

    uri = model_uri or config.predict.model_uri
    path = out or config.predict.out
    # The data first: a config or data error is reported before the tracking store is touched.
    dataset = load_dataset(config.data, named_columns(config))
    loaded = load_registered_model(uri)
    check_model_matches(loaded.close, dataset.deals, str(config.data.deals))
    as_of = parse_as_of(as_of_text) if as_of_text else default_as_of(dataset)
    later_events, later_deals = after_as_of(dataset, as_of)
    if later_events or later_deals:
        print(
            f"note: {later_events:,} interactions and {later_deals:,} deals dated at or after "
            f"as_of={as_of.isoformat()} are not used (features see only the past)"
        )
    queue = build_queue(
        dataset, loaded, as_of, config.ranking, config.predict.chunk_rows, read_previous_queue(path)
    )
    write_table(queue, path)
    run_id = log_prediction_run(queue, path, loaded.uri, loaded.version, config.predict.experiment)
    print_queue_summary(queue, tier_summary(queue), path, run_id)
