"""Reason codes as a salesperson would say them: "2 meetings in the last 30 days (raises the
odds)", not "'MEETING' interactions in the last 30 days: 2".

Each feature has a phrase built from its value; each reason ends with the direction of its
contribution, so a reason can never read against its sign: every item of `reasons_up` ends in
"(raises the odds)" and comes from a feature with a positive contribution, every item of
`reasons_down` ends in "(lowers the odds)" from a negative one. The choice of features (the
`top` strongest each way) is `models.ranker.reason_codes`'s.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from closeprob.features.registry import feature_descriptions
from closeprob.features.spec import FeatureSpec, slug
from closeprob.models.ranker import format_value

UP, DOWN = "(raises the odds)", "(lowers the odds)"
Phrase = Callable[[object], str]


def _text(template: str, missing: str | None = None) -> Phrase:
    """`template` with the value; `missing` (if given) when there is no value."""

    def phrase(value: object) -> str:
        text = format_value(value)
        return missing if missing is not None and text == "none" else template.format(v=text)

    return phrase


def _share(template: str) -> Phrase:
    def phrase(value: object) -> str:
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        return template.format(v="unknown" if pd.isna(number) else f"{number:.0%}")

    return phrase


def _count(noun: str, tail: str, plural: str | None = None) -> Phrase:
    """A count in words: 1 meeting in the last 30 days, 3 meetings …, no meetings …"""
    nouns = plural or _plural(noun)

    def phrase(value: object) -> str:
        text = format_value(value)
        if text in ("0", "none"):
            return f"no {nouns} {tail}"
        return f"{text} {noun if text == '1' else nouns} {tail}"

    return phrase


def _plural(noun: str) -> str:
    """reply -> replies, touch -> touches, meeting -> meetings (the last word of `noun`)."""
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("ch", "sh", "s", "x")) else "s")


FIXED: dict[str, Phrase] = {
    "deal_age_days": _text("deal open for {v} days"),
    "touches_total": _count("touch", "logged so far", "touches"),
    "touches_per_30d": _text("{v} touches a month on average"),
    "days_since_last_touch": _text("last contact {v} days ago", "no contact logged yet"),
    "days_since_last_inbound": _text(
        "the customer last reached out {v} days ago", "the customer has not reached out yet"
    ),
    "days_since_last_outbound": _text(
        "we last reached out {v} days ago", "we have not reached out yet"
    ),
    "amount_declared": _text("deal size {v}"),
    "interaction_value_total": _text("{v} in offers and quotes so far"),
    "engagement_trend_30d": _text("activity trend against the month before: {v}"),
    "inbound_share_total": _share("{v} of the conversations started by the customer"),
    "inbound_share_90d": _share("{v} of the conversations in 90 days started by the customer"),
    "distinct_types_total": _count("kind of interaction", "so far", "kinds of interaction"),
    "distinct_channels_total": _count("channel", "used so far"),
    "distinct_types_30d": _count(
        "kind of interaction", "in the last 30 days", "kinds of interaction"
    ),
    "current_stage": _text("stage: {v}"),
    "days_in_stage": _text("{v} days in the current stage"),
    "lifetime_touches_vs_market": _text("{v}× as busy as a typical open deal over its life"),
    "quiet_vs_market": _text("quiet for as long as a typical deal takes to log {v} touches"),
    # Percentile ranks among the deals open at the same date (features/snapshot_ranks.py).
    "deal_age_days_pct": _share("older than about {v} of the deals open now"),
    "days_since_last_touch_pct": _share("quiet longer than about {v} of the deals open now"),
    "days_in_stage_pct": _share("in its stage longer than about {v} of the deals open now"),
    "touches_total_pct": _share("more touches so far than about {v} of the deals open now"),
    "touches_per_30d_pct": _share("busier over its life than about {v} of the deals open now"),
    "owner_win_rate_pct": _share("the owner's win rate tops about {v} of the deals open now"),
    "account_win_rate_pct": _share("the account's win rate tops about {v} of the deals open now"),
}


def sales_phrases(spec: FeatureSpec) -> dict[str, Phrase]:
    """A phrase for every model input of `spec`, in model order (the registry's description
    and the value for a feature without its own phrase)."""
    phrases: dict[str, Phrase] = {}
    for name, description in feature_descriptions(spec).items():
        phrases[name] = FIXED.get(name) or _windowed(name, spec) or _history(name) or (
            _attribute(name, spec) or _text(f"{description}: {{v}}")
        )  # fmt: skip
    return phrases


def _windowed(name: str, spec: FeatureSpec) -> Phrase | None:
    for days in spec.windows_days:
        tail = f"in the last {days} days"
        own = {
            f"touches_{days}d": _count("touch", tail, "touches"),
            f"inbound_{days}d": _count(
                "message from the customer", tail, "messages from the customer"
            ),
            f"outbound_{days}d": _count("message from us", tail, "messages from us"),
            f"touches_{days}d_vs_market": _text(f"{{v}}× as busy as a typical open deal {tail}"),
            f"market_touches_{days}d": _text(f"{{v}} touches per open deal {tail}, market-wide"),
        }
        for event_type in spec.event_types:
            noun = str(event_type).lower().replace("_", " ")
            own[f"n_{slug(event_type)}_{days}d"] = _count(noun, tail)
        if name in own:
            return own[name]
    if name.startswith("touches_") and name.endswith("_vs_market"):
        return _text("{v}× as busy as a typical open deal lately")
    if name.startswith("market_touches_"):
        return _text("{v} touches per open deal lately, market-wide")
    return None


def _history(name: str) -> Phrase | None:
    who, _, what = name.partition("_")
    if who not in ("owner", "account"):
        return None
    return {
        "win_rate": _share(f"the {who}'s win rate: {{v}}"),
        "closed_deals": _count("closed deal", f"for the {who} so far"),
        "avg_won_value": _text(
            f"the {who}'s average won deal: {{v}}", f"no won deal for the {who} yet"
        ),
        "open_deals": _count("other open deal", f"for the {who}"),
    }.get(what)


def _attribute(name: str, spec: FeatureSpec) -> Phrase | None:
    for attribute in spec.attributes:
        if name == f"attr_{slug(attribute)}":
            return _text(f"{attribute.replace('_', ' ')}: {{v}}")
    return None


def sales_reason_codes(
    contributions: np.ndarray, features: pd.DataFrame, spec: FeatureSpec, top: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the `top` features pushing the score up and the `top` pushing it down (by
    contribution, strongest first; the bias column after the features is ignored), as
    phrases joined by "; ", each ending in its direction."""
    phrases = sales_phrases(spec)
    names = list(phrases)
    effects = np.asarray(contributions)[:, : len(names)]
    order = np.argsort(-effects, axis=1, kind="stable")
    up = _joined(effects, order[:, :top], effects > 0, names, phrases, features, UP)
    down = _joined(effects, order[:, ::-1][:, :top], effects < 0, names, phrases, features, DOWN)
    return up, down


def _joined(
    effects: np.ndarray,
    picks: np.ndarray,
    pushes: np.ndarray,
    names: list[str],
    phrases: dict[str, Phrase],
    features: pd.DataFrame,
    direction: str,
) -> np.ndarray:
    """The picked features that push the right way (a prefix of each row's picks), phrased;
    each distinct value of a feature is phrased once."""
    rows = np.arange(len(effects))
    joined = np.full(len(effects), "", dtype=object)
    for slot in range(picks.shape[1]):
        feature = picks[:, slot]
        valid = pushes[rows, feature]
        text = np.full(len(effects), "", dtype=object)
        for index in np.unique(feature[valid]):
            chosen = valid & (feature == index)
            values = pd.Series(features[names[index]].to_numpy(dtype=object)[chosen])
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            phrase = phrases[names[index]]
            texts = np.array([f"{phrase(v)} {direction}" for v in [*uniques, None]], dtype=object)
            text[chosen] = texts[codes]
        joined = np.where(valid, np.where(slot == 0, text, joined + "; " + text), joined)
    return joined
