"""The built-in synthetic CRM: a seeded generator and the oracle it makes possible.

Every deal has hidden variables drawn at creation: a propensity `z` (from account, owner, source,
industry, size, amount and deal-specific noise), a stall flag and stall day. The outcome and the
time to close depend only on those; interactions are a Poisson process whose rate and type mix
depend on `z` and on stalling, truncated at the close. Given the hidden variables, what is
observed (interactions, history) says nothing more about the outcome, so the oracle below, which
sees them, is the best any model could do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

INDUSTRIES = ("software", "banking", "retail", "insurance", "real_estate", "manufacturing")
INDUSTRY_EFFECT = (0.35, 0.0, -0.25, -0.1, 0.15, -0.2)
SIZES = ("small", "mid", "enterprise")
SIZE_SHARE = (0.5, 0.35, 0.15)
SIZE_AMOUNT = (8_000.0, 30_000.0, 120_000.0)
SIZE_DURATION = (0.7, 1.0, 1.6)
SOURCES = ("inbound_web", "referral", "outbound", "partner", "event")
SOURCE_SHARE = (0.35, 0.12, 0.3, 0.13, 0.1)
SOURCE_EFFECT = (0.2, 0.7, -0.5, 0.3, 0.0)
REGIONS = ("emea", "north_america", "apac", "latam")
REGION_SHARE = (0.35, 0.35, 0.2, 0.1)
PRODUCTS = ("core", "pro", "suite", "services")
PRODUCT_AMOUNT = (0.6, 1.0, 2.2, 0.8)

# (type, channel, direction, base weight, sensitivity to z)
EVENT_TYPES = (
    ("email_out", "email", "outbound", 3.0, -0.5),
    ("email_reply", "email", "inbound", 1.2, 1.0),
    ("call_out", "phone", "outbound", 1.6, -0.2),
    ("call_in", "phone", "inbound", 0.35, 1.0),
    ("meeting", "meeting", "outbound", 0.6, 0.8),
    ("demo", "meeting", "outbound", 0.3, 0.9),
    ("proposal_sent", "email", "outbound", 0.15, 1.0),
    ("web_visit", "web", "inbound", 0.8, 0.35),
    ("note", "crm", None, 0.8, 0.0),
)
N_STAGES = 4
WON_MEDIAN_DAYS, WON_SIGMA = 45.0, 0.5
LOST_MEDIAN_DAYS, LOST_SIGMA = 35.0, 0.7
STALLED_LOST_MEDIAN_DAYS, STALLED_LOST_SIGMA = 140.0, 0.45
STALL_RATE_FACTOR = 0.04
DEAL_NOISE_SD = 0.6
RATE_SENSITIVITY = 0.6
STALLED_EARLY_RATE = 0.4
THINNING_PEAK = 1.5
THINNING_KEPT = 0.56


@dataclass(frozen=True)
class SyntheticCrm:
    deals: pd.DataFrame
    interactions: pd.DataFrame
    truth: pd.DataFrame
    end: pd.Timestamp


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _day_weights(days: pd.DatetimeIndex) -> np.ndarray:
    """Business seasonality: quiet weekends, a summer and a year-end dip, quarter-end pushes."""
    weekday = np.where(days.day_of_week >= 5, 0.15, 1.0)
    month = np.array([0.9, 1.0, 1.15, 1.0, 1.0, 1.1, 0.8, 0.65, 1.05, 1.1, 1.1, 0.75])
    quarter_end = np.where((days.month % 3 == 0) & (days.day >= 15), 1.2, 1.0)
    growth = 1.0 + 0.25 * np.linspace(0.0, 1.0, len(days))
    return weekday * month[days.month - 1] * quarter_end * growth


def _draw_deals(
    rng: np.random.Generator, n_deals: int, start: pd.Timestamp, days: int
) -> pd.DataFrame:
    """One row per deal with observed attributes and hidden variables (prefixed `hidden_`)."""
    n_accounts, n_owners = max(n_deals // 4, 10), max(n_deals // 170, 5)
    account_industry = rng.integers(0, len(INDUSTRIES), n_accounts)
    account_size = rng.choice(len(SIZES), n_accounts, p=SIZE_SHARE)
    account_quality = rng.normal(0.0, 0.3, n_accounts)
    owner_skill = rng.normal(0.0, 0.6, n_owners)

    calendar = pd.date_range(start, periods=days, freq="D")
    weights = _day_weights(calendar)
    day = rng.choice(days, n_deals, p=weights / weights.sum())
    seconds = rng.integers(8 * 3600, 18 * 3600, n_deals)
    created_at = calendar[day] + pd.to_timedelta(seconds, unit="s")

    popularity = rng.pareto(1.5, n_accounts) + 1.0
    account = rng.choice(n_accounts, n_deals, p=popularity / popularity.sum())
    owner = rng.integers(0, n_owners, n_deals)
    source = rng.choice(len(SOURCES), n_deals, p=SOURCE_SHARE)
    region = rng.choice(len(REGIONS), n_deals, p=REGION_SHARE)
    product = rng.integers(0, len(PRODUCTS), n_deals)
    size = account_size[account]
    amount = (
        np.asarray(SIZE_AMOUNT)[size]
        * np.asarray(PRODUCT_AMOUNT)[product]
        * np.exp(rng.normal(0.0, 0.5, n_deals))
    )
    amount = np.round(amount, -2)
    z = (
        np.asarray(SOURCE_EFFECT)[source]
        + np.asarray(INDUSTRY_EFFECT)[account_industry[account]]
        + account_quality[account]
        + owner_skill[owner]
        - 0.25 * np.log(amount / 25_000.0)
        + rng.normal(0.0, DEAL_NOISE_SD, n_deals)
    )
    return pd.DataFrame(
        {
            "deal_id": [f"D{i:06d}" for i in range(n_deals)],
            "created_at": created_at,
            "amount": amount,
            "account_id": [f"A{a:05d}" for a in account],
            "owner_id": [f"U{o:03d}" for o in owner],
            "industry": np.asarray(INDUSTRIES)[account_industry[account]],
            "company_size": np.asarray(SIZES)[size],
            "source": np.asarray(SOURCES)[source],
            "region": np.asarray(REGIONS)[region],
            "product": np.asarray(PRODUCTS)[product],
            "hidden_z": z,
            "hidden_size": size,
        }
    )


def _draw_outcomes(
    rng: np.random.Generator, deals: pd.DataFrame, end: pd.Timestamp
) -> pd.DataFrame:
    """Adds hidden stall state, true win probability, duration laws, and the observed close."""
    n = len(deals)
    z = deals["hidden_z"].to_numpy()
    size_factor = np.asarray(SIZE_DURATION)[deals["hidden_size"].to_numpy()]
    stalled = rng.random(n) < _sigmoid(-1.6 - 0.9 * z)
    stall_after_days = rng.uniform(5.0, 30.0, n)
    p_win = _sigmoid(-0.9 + 1.25 * z - 2.5 * stalled)
    won = rng.random(n) < p_win

    won_median = WON_MEDIAN_DAYS * size_factor
    lost_median = np.where(stalled, STALLED_LOST_MEDIAN_DAYS, LOST_MEDIAN_DAYS * size_factor)
    lost_sigma = np.where(stalled, STALLED_LOST_SIGMA, LOST_SIGMA)
    duration_days = np.where(
        won,
        won_median * np.exp(WON_SIGMA * rng.normal(size=n)),
        lost_median * np.exp(lost_sigma * rng.normal(size=n)),
    )
    closed_at = (
        deals["created_at"] + pd.to_timedelta(duration_days * 86_400.0, unit="s")
    ).dt.floor("s")
    is_closed = (closed_at < end).to_numpy()
    return deals.assign(
        closed_at=closed_at.where(is_closed),
        outcome=pd.Series(np.where(won, "won", "lost"), index=deals.index).where(is_closed),
        hidden_stalled=stalled,
        hidden_stall_after_days=stall_after_days,
        p_win=p_win,
        won_median_days=won_median,
        won_sigma=WON_SIGMA,
        lost_median_days=lost_median,
        lost_sigma=lost_sigma,
        hidden_active_end=closed_at.where(is_closed, end),
    )


def _active_segments(deals: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Days each deal is open before its stall, and after it (zero for deals that never stall)."""
    active = (deals["hidden_active_end"] - deals["created_at"]).dt.total_seconds().to_numpy()
    active_days = active / 86_400.0
    stall_day = np.where(deals["hidden_stalled"], deals["hidden_stall_after_days"], np.inf)
    seg1 = np.minimum(active_days, stall_day)
    return seg1, np.maximum(active_days - seg1, 0.0)


def _draw_events(
    rng: np.random.Generator, deals: pd.DataFrame, rate_per_day: float
) -> pd.DataFrame:
    """Poisson interactions in two segments per deal (before and after a stall), thinned by day."""
    z = deals["hidden_z"].to_numpy()
    start = deals["created_at"].to_numpy()
    seg1, seg2 = _active_segments(deals)
    # Deals that will stall were lukewarm from the start, then go nearly silent.
    base = (
        rate_per_day
        * np.exp(RATE_SENSITIVITY * z)
        * np.where(deals["hidden_stalled"], STALLED_EARLY_RATE, 1.0)
    )
    offsets: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    for seg_start, seg_len, factor in ((0.0, seg1, 1.0), (seg1, seg2, STALL_RATE_FACTOR)):
        counts = rng.poisson(base * factor * seg_len)
        idx = np.repeat(np.arange(len(deals)), counts)
        offsets.append(
            np.broadcast_to(seg_start, len(deals))[idx] + rng.random(len(idx)) * seg_len[idx]
        )
        owners.append(idx)
    idx = np.concatenate(owners)
    offset_days = np.concatenate(offsets)
    occurred_at = pd.DatetimeIndex(start[idx]) + pd.to_timedelta(offset_days * 86_400.0, unit="s")
    occurred_at = occurred_at.floor("s")
    keep = rng.random(len(idx)) < _day_weights(occurred_at.normalize()) / THINNING_PEAK
    idx, occurred_at = idx[keep], occurred_at[keep]

    weights = np.stack([w * np.exp(s * z[idx]) for _, _, _, w, s in EVENT_TYPES], axis=1)
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    kind = (rng.random(len(idx))[:, None] > cumulative).sum(axis=1)
    amount = deals["amount"].to_numpy()[idx]
    is_proposal = np.asarray([t for t, *_ in EVENT_TYPES])[kind] == "proposal_sent"
    value = np.where(is_proposal, np.round(amount * rng.uniform(0.85, 1.1, len(idx)), -2), np.nan)
    return pd.DataFrame(
        {
            "deal_id": deals["deal_id"].to_numpy()[idx],
            "occurred_at": occurred_at,
            "type": np.asarray([t for t, *_ in EVENT_TYPES])[kind],
            "channel": np.asarray([c for _, c, *_ in EVENT_TYPES])[kind],
            "direction": pd.array([d for _, _, d, *_ in EVENT_TYPES], dtype="str")[kind],
            "value": value,
        }
    )


def _draw_stage_changes(rng: np.random.Generator, deals: pd.DataFrame) -> pd.DataFrame:
    """Stage progression 1..4, faster for higher z; stalled deals stop progressing."""
    z = deals["hidden_z"].to_numpy()
    mean_gap = 18.0 * np.exp(-0.5 * z)
    at_days = np.cumsum(rng.exponential(1.0, (len(deals), N_STAGES)) * mean_gap[:, None], axis=1)
    at_days[:, 0] = rng.uniform(0.0, 3.0, len(deals))
    active_days = (deals["hidden_active_end"] - deals["created_at"]).dt.total_seconds() / 86_400.0
    limit = np.where(deals["hidden_stalled"], deals["hidden_stall_after_days"], np.inf)
    limit = np.minimum(limit, active_days.to_numpy())
    row, stage = np.nonzero(at_days < limit[:, None])
    occurred_at = pd.DatetimeIndex(deals["created_at"].to_numpy()[row]) + pd.to_timedelta(
        at_days[row, stage] * 86_400.0, unit="s"
    )
    occurred_at = occurred_at.floor("s")
    return pd.DataFrame(
        {
            "deal_id": deals["deal_id"].to_numpy()[row],
            "occurred_at": occurred_at,
            "type": "stage_change",
            "channel": "crm",
            "direction": pd.array([None] * len(row), dtype="str"),
            "value": (stage + 1).astype(float),
        }
    )


def generate_crm(
    n_deals: int, n_interactions: int, start: str, days: int, seed: int
) -> SyntheticCrm:
    """A seeded CRM: deals, interactions (about `n_interactions`), and each deal's hidden truth."""
    rng = np.random.default_rng(seed)
    start_at = pd.Timestamp(start, tz="UTC")
    end = start_at + pd.Timedelta(days=days)
    drawn = _draw_outcomes(rng, _draw_deals(rng, n_deals, start_at, days), end)
    seg1, seg2 = _active_segments(drawn)
    early = np.where(drawn["hidden_stalled"], STALLED_EARLY_RATE, 1.0)
    weight = np.exp(RATE_SENSITIVITY * drawn["hidden_z"]) * early
    exposure = float((weight * (seg1 + STALL_RATE_FACTOR * seg2)).sum())
    # Stage changes are about 2 per deal; thinning keeps about THINNING_KEPT of the events.
    rate = max(n_interactions - 2.0 * n_deals, 0.0) / max(exposure * THINNING_KEPT, 1.0)
    interactions = pd.concat(
        [_draw_events(rng, drawn, rate), _draw_stage_changes(rng, drawn)], ignore_index=True
    )
    interactions = interactions.sort_values(["occurred_at", "deal_id"], kind="stable")
    truth_columns = ["deal_id", "p_win", "won_median_days", "won_sigma"]
    truth_columns += ["lost_median_days", "lost_sigma"]
    deal_columns = ["deal_id", "created_at", "closed_at", "outcome", "amount", "account_id"]
    deal_columns += ["owner_id", "industry", "company_size", "source", "region", "product"]
    deals = drawn[deal_columns].copy()
    # Some CRMs leave the declared value empty: about 12 % here.
    deals["amount"] = deals["amount"].where(rng.random(len(deals)) >= 0.12)
    return SyntheticCrm(
        deals=deals,
        interactions=interactions.reset_index(drop=True),
        truth=drawn[truth_columns].reset_index(drop=True),
        end=end,
    )
