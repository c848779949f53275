"""Does the queue of open deals look like history? A model that learned to tell open deals from
closed ones (a leak the column checks missed) scores every open deal near zero, far below what
deals of their ages went on to win in the past."""

from __future__ import annotations

import numpy as np

# Deal ages, in days, compared within these bands.
AGE_EDGES = (0.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0, np.inf)


def expected_win_rate(
    open_age_days: np.ndarray, history_age_days: np.ndarray, history_won: np.ndarray
) -> float:
    """The mean over open deals of the win rate within the horizon of past open deals of the
    same age band (labelled snapshot rows); bands without history take the overall rate."""
    overall = float(np.mean(history_won)) if len(history_won) else float("nan")
    edges = np.asarray(AGE_EDGES)
    past_band = np.clip(np.searchsorted(edges, history_age_days, side="right") - 1, 0, None)
    open_band = np.clip(np.searchsorted(edges, open_age_days, side="right") - 1, 0, None)
    totals = np.bincount(past_band, minlength=len(edges))
    wins = np.bincount(past_band, weights=history_won.astype(float), minlength=len(edges))
    rates = np.divide(wins, totals, out=np.full(len(edges), overall), where=totals > 0)
    return float(np.mean(rates[open_band])) if len(open_band) else float("nan")


def queue_shortfall_reason(
    open_p: np.ndarray,
    open_age_days: np.ndarray,
    history_age_days: np.ndarray,
    history_won: np.ndarray,
    min_ratio: float,
) -> str | None:
    """Why the open deals' mean p_close is not believable (under `min_ratio` of what history
    says for deals of their ages), or None (also with no open deals or no history)."""
    if len(open_p) == 0 or len(history_won) == 0:
        return None
    expected = expected_win_rate(open_age_days, history_age_days, history_won)
    scored = float(np.mean(open_p))
    if not expected > 0 or scored >= min_ratio * expected:
        return None
    return (
        f"the {len(open_p):,} open deals' mean p_close {scored:.3f} is under "
        f"{min_ratio:.0%} of what history says for open deals of their ages ({expected:.3f} won "
        "within the horizon): the model tells open deals from closed ones, most likely through "
        "a column set as deals close (data.attributes, data.allow_suspect_columns); "
        "evaluation.min_queue_ratio sets the limit"
    )
