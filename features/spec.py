"""What a model's feature set is made of.

It is fixed at training, stored with the model, and reused to score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class FeatureSpec:
    """The parameters that decide which feature columns exist and how they are computed."""

    event_types: tuple[str, ...]
    windows_days: tuple[int, ...] = (7, 30, 90)
    attributes: tuple[str, ...] = ()
    history_keys: tuple[str, ...] = ("owner_id", "account_id")
    stage_event_type: str = "stage_change"
    prior_strength: float = 20.0
    # Activity against every open deal's over this many days (features/market.py); 0: none,
    # which is what models pickled before the family existed read.
    market_window_days: int = 0
    # Stage moves in 30 days and moved back (features/stage_history.py); False: what models
    # pickled before the family existed read.
    stage_history: bool = False
    # The stages' names in order (stage number 1 is the first): the queue shows them.
    stage_names: tuple[str, ...] = ()
    # The current stage's win rate (features/stage_win_rate.py), with the stage-history family.
    # The level of the market family capped against one runaway deal (features/market.py).
    # Both default on for new specs; a model stored before either existed reads False
    # (models/native.py LEGACY_SPEC), which is what it was fitted on.
    stage_win_rate: bool = True
    market_robust: bool = True
    # Percentile ranks among the deals open at the same as_of (features/snapshot_ranks.py).
    # Opt-in; False is also what a model stored before it existed reads.
    snapshot_ranks: bool = False
    # Days from as_of to its quarter's last day (features/calendar.py). Opt-in; False is also
    # what a model stored before it existed reads.
    calendar: bool = False


def slug(name: str) -> str:
    """A column-safe lower-case name: 'W_Completeren aanvraag' -> 'w_completeren_aanvraag'."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "blank"


def select_event_types(
    interactions: pd.DataFrame, before: pd.Timestamp, max_types: int
) -> tuple[str, ...]:
    """The `max_types` most frequent interaction types among events strictly before `before`.

    Only past events decide which type columns exist, so the column set never depends on the
    period a model is evaluated on. Ties break alphabetically; types whose slugs collide keep
    the more frequent one.
    """
    past = interactions.loc[interactions["occurred_at"] < before, "type"].dropna().astype(str)
    # Counted case-folded, as features compare types ('Email' and 'EMAIL' are one type), each
    # named by its most frequent spelling.
    spellings = past.str.strip().value_counts().sort_index()
    spellings = spellings.sort_values(ascending=False, kind="stable")
    folded = spellings.index.str.casefold()
    named = pd.Series(spellings.index, index=folded).groupby(level=0).first()
    counts = spellings.groupby(folded).sum().rename(index=named.to_dict())
    ranked = sorted(
        ((str(name), count) for name, count in counts.items()), key=lambda item: (-item[1], item[0])
    )
    chosen: dict[str, str] = {}
    for name, _ in ranked:
        chosen.setdefault(slug(name), name)
        if len(chosen) == max_types:
            break
    return tuple(chosen.values())
