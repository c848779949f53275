"""The priority queue: expected value, ABC tiers, owner capacity, reason codes, re-ranking."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

TIERS = ("A", "B", "C")


def urgency_factor(days_quiet: np.ndarray, grace_days: float, half_life_days: float) -> np.ndarray:
    """1 while a deal has been quiet for at most `grace_days`, then halving every
    `half_life_days`; a deal never touched counts as quiet since creation (pass its age)."""
    quiet = np.nan_to_num(np.asarray(days_quiet, dtype=float), nan=0.0)
    return np.power(0.5, np.maximum(quiet - grace_days, 0.0) / half_life_days)


def rank_deals(scored: pd.DataFrame, weight: np.ndarray | None = None) -> pd.DataFrame:
    """Sorted queue: one row per deal, by expected_value, then p_close (both descending),
    then deal_id.

    `scored` has `deal_id`, `p_close` and `deal_value`. expected_value = p_close × deal_value ×
    `weight` (the urgency factor, 1 by default). A deal without a value has expected value p_close
    × weight, so a data set without values ranks by probability alone.
    """
    value = scored["deal_value"].to_numpy(dtype=float, na_value=np.nan)
    factor = np.ones(len(scored)) if weight is None else np.asarray(weight, dtype=float)
    has_value = ~np.isnan(value)
    if has_value.any() and not has_value.all():
        value = np.where(has_value, value, 0.0)
    elif not has_value.any():
        value = np.ones(len(scored))
    queue = scored.assign(expected_value=scored["p_close"].to_numpy() * value * factor)
    queue = queue.sort_values(
        ["expected_value", "p_close", "deal_id"], ascending=[False, False, True], kind="stable"
    )
    return queue.assign(rank=np.arange(1, len(queue) + 1)).reset_index(drop=True)


def assign_tiers(expected_value: np.ndarray, a_share: float, b_share: float) -> np.ndarray:
    """ABC tiers over a queue sorted by descending expected value.

    A: the deals that make up the first `a_share` of total expected value (the deal that crosses
    the line is in A); B: the next `b_share`; C: the rest. All zero → all C.
    """
    values = np.maximum(np.asarray(expected_value, dtype=float), 0.0)
    total = values.sum()
    if total <= 0:
        return np.full(len(values), "C", dtype=object)
    before = (np.cumsum(values) - values) / total
    return np.select([before < a_share, before < a_share + b_share], ["A", "B"], "C").astype(object)


def apply_capacity(tiers: np.ndarray, owners: pd.Series, per_owner: int | None) -> np.ndarray:
    """Only each owner's first `per_owner` deals in queue order may stay in A; the others go
    to B. Rows must be in queue order. Deals without an owner are not limited."""
    if per_owner is None:
        return tiers
    in_a = pd.Series(tiers == "A", index=owners.index)
    position = in_a.groupby(owners.fillna("\0none").to_numpy()).cumsum()
    over = in_a & (position > per_owner) & owners.notna()
    return np.where(over.to_numpy(), "B", tiers).astype(object)


def read_deals(owners: pd.Series, per_owner: int, top_share: float) -> np.ndarray:
    """The rows of a queue (in queue order) that people read: each owner's first `per_owner`
    deals and the first `top_share` of the whole queue (at least one row). Deals without an
    owner are read only in the top share."""
    position = np.arange(len(owners))
    in_top = position < max(1, math.ceil(top_share * len(owners)))
    keys = owners.fillna("\0none").to_numpy()
    per_owner_rank = pd.Series(position).groupby(keys, sort=False).cumcount().to_numpy()
    return in_top | (owners.notna().to_numpy() & (per_owner_rank < per_owner))


def format_value(value: object) -> str:
    """A feature value as a person reads it: 41, 0.35, 12,500, 'referral', or 'none'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "none"
    if isinstance(value, str):
        return value
    number = float(value)  # type: ignore[arg-type]
    if number.is_integer():
        return f"{int(number):,}"
    return (
        f"{number:,.0f}"
        if abs(number) >= 100
        else f"{number:.2g}"
        if abs(number) < 1
        else f"{number:.1f}"
    )


def reason_codes(
    contributions: np.ndarray,
    features: pd.DataFrame,
    descriptions: dict[str, str],
    top: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the `top` features pushing the score up and the `top` pushing it down.

    `contributions` are `CloseModel.contributions` (log-odds contributions to the uncalibrated
    raw score of the booster, or of its blend with the logistic part; one column per feature in
    `descriptions` order, then the bias column, which is ignored).
    Calibration is monotone, so the direction of each push holds for p_close too. Each reason
    reads "<description>: <value>", strongest first, joined by "; ". Vectorised: one pass per
    reason slot and feature, each distinct value formatted once.
    """
    names = list(descriptions)
    effects = np.asarray(contributions)[:, : len(names)]
    order = np.argsort(-effects, axis=1, kind="stable")
    labels = [f"{descriptions[name]}: " for name in names]
    columns = [features[name].to_numpy(dtype=object) for name in names]
    up = _joined_reasons(effects, order[:, :top], effects > 0, labels, columns)
    down = _joined_reasons(effects, order[:, ::-1][:, :top], effects < 0, labels, columns)
    return up, down


def _joined_reasons(
    effects: np.ndarray,
    picks: np.ndarray,
    pushes: np.ndarray,
    labels: list[str],
    columns: list[np.ndarray],
) -> np.ndarray:
    """Reasons of the picked features (strongest first) that push the right way, joined.

    Pushing features come first in `picks`, so the valid slots of a row are a prefix.
    """
    rows = np.arange(len(effects))
    joined = np.full(len(effects), "", dtype=object)
    for slot in range(picks.shape[1]):
        feature = picks[:, slot]
        valid = pushes[rows, feature]
        text = np.full(len(effects), "", dtype=object)
        for index in np.unique(feature[valid]):
            chosen = valid & (feature == index)
            text[chosen] = labels[index] + _formatted(columns[index][chosen])
        joined = np.where(valid, np.where(slot == 0, text, joined + "; " + text), joined)
    return joined


def _formatted(values: np.ndarray) -> np.ndarray:
    """`format_value` of each value, computed once per distinct value."""
    keys = pd.Series(values, dtype=object)
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    texts = np.array([format_value(v) for v in uniques] + ["none"], dtype=object)
    return texts[codes]


def compare_with_previous(queue: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """`p_close_change` (now − before), `tier_change` ('B→A', 'new', or '' if unchanged) and
    `rank_change` (places moved up: before − now; missing for a new deal or without ranks)."""
    no_rank = pd.array([pd.NA] * len(queue), dtype="Int64")
    if previous is None:
        return queue.assign(p_close_change=np.nan, tier_change="", rank_change=no_rank)
    before = previous.drop_duplicates("deal_id").set_index("deal_id")
    old_p = queue["deal_id"].map(before["p_close"]).astype(float)
    old_tier = queue["deal_id"].map(before["tier"].astype("str"))
    change = np.where(
        old_tier.isna(),
        "new",
        np.where(old_tier == queue["tier"], "", old_tier.fillna("") + "→" + queue["tier"]),
    )
    moved = pd.Series(no_rank, index=queue.index)
    if "rank" in before.columns and "rank" in queue.columns:
        old_rank = pd.to_numeric(queue["deal_id"].map(before["rank"]), errors="coerce")
        moved = (old_rank - queue["rank"]).astype("Int64")
    return queue.assign(
        p_close_change=queue["p_close"] - old_p, tier_change=change, rank_change=moved
    )
