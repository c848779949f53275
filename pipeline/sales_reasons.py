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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from closeprob.features.registry import feature_descriptions
from closeprob.features.spec import FeatureSpec, slug
from closeprob.models.ranker import format_value

UP, DOWN = "(raises the odds)", "(lowers the odds)"
# Keys of values that read the same; complex: the real part a number, the imaginary part the
# rule that made it (whole 0, tenths 1, two digits 2, the value itself 3, percent 4 and 5), so
# two rules never share a key.
Keys = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Phrase:
    """A feature's words for one value; `keys` maps an array of values to keys such that
    values with one key read the same, so a batch is phrased once per key, not per row."""

    words: Callable[[object], str]
    keys: Keys

    def __call__(self, value: object) -> str:
        return self.words(value)


# A rounding within this of a tie (in units of the last digit kept) is left to Python: the
# float product that found it is off by at most about 1e-13 there.
TIE_MARGIN = 1e-9


def _near_tie(scaled: np.ndarray) -> np.ndarray:
    return np.abs(scaled - np.floor(scaled) - 0.5) < TIE_MARGIN


def reading_keys(values: np.ndarray) -> np.ndarray:
    """Keys such that numbers with one key read the same through `format_value`: whole
    numbers (and from 100 up, the whole number they round to) by themselves, from 1 to 100 by
    their tenths, below 1 by their two significant digits; a value near a rounding tie, where
    a float product could round the other way, is its own key."""
    x = np.asarray(values, dtype=float)
    with np.errstate(all="ignore"):
        size = np.abs(x)
        whole = (x == np.floor(x)) | np.isnan(x)
        big = ~whole & (size >= 100)
        keys = np.where(whole | big, np.rint(x), x) + 0j  # `,.0f` is rint, exactly
        tenths = ~whole & ~big & (size >= 1)
        keys[tenths] = np.rint(x[tenths] * 10) + 1j
        small = ~whole & ~big & ~tenths
        exponent = np.floor(np.log10(size[small]))
        digits = size[small] / 10.0 ** (exponent - 1)  # two significant digits: [10, 100)
        rounded = np.rint(digits)
        carried = rounded == 100  # 0.996 reads "1": one more digit before the point
        sign = np.sign(x[small])
        keys[small] = sign * np.where(carried, 10, rounded) + 1000 * (exponent + carried) + 2j
        doubtful = np.zeros(len(x), dtype=bool)
        doubtful[tenths] = _near_tie(x[tenths] * 10)
        doubtful[small] = _near_tie(digits) | (digits < 10) | (digits >= 100)
    keys[doubtful] = x[doubtful] + 3j
    return keys


def share_keys(values: np.ndarray) -> np.ndarray:
    """Keys such that numbers with one key read the same as `.0%`: Python formats the float
    product with 100 to whole units, which is rint of it exactly (a negative sign kept: -0%)."""
    with np.errstate(all="ignore"):
        percent = np.asarray(values, dtype=float) * 100.0
        return np.rint(percent) + 1j * (4 + np.signbit(percent))


def _text(template: str, missing: str | None = None) -> Phrase:
    """`template` with the value; `missing` (if given) when there is no value."""

    def phrase(value: object) -> str:
        text = format_value(value)
        return missing if missing is not None and text == "none" else template.format(v=text)

    return Phrase(phrase, reading_keys)


def _share(template: str) -> Phrase:
    def phrase(value: object) -> str:
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        return template.format(v="unknown" if pd.isna(number) else f"{number:.0%}")

    return Phrase(phrase, share_keys)


def _count(noun: str, tail: str, plural: str | None = None) -> Phrase:
    """A count in words: 1 meeting in the last 30 days, 3 meetings …, no meetings …"""
    nouns = plural or _plural(noun)

    def phrase(value: object) -> str:
        text = format_value(value)
        if text in ("0", "none"):
            return f"no {nouns} {tail}"
        return f"{text} {noun if text == '1' else nouns} {tail}"

    return Phrase(phrase, reading_keys)


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
    "days_to_quarter_end": _text("{v} days left in the quarter"),  # features/calendar.py
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
    up, down = order[:, :top], order[:, ::-1][:, :top]
    up_valid = np.take_along_axis(effects > 0, up, axis=1)
    down_valid = np.take_along_axis(effects < 0, down, axis=1)
    text = _phrased(
        np.concatenate([up, down], axis=1),
        np.concatenate([up_valid, down_valid], axis=1),
        names,
        phrases,
        features,
    )
    up_text, down_text = text[:, : up.shape[1]], text[:, up.shape[1] :]
    return _joined(up_text, up_valid, UP), _joined(down_text, down_valid, DOWN)


def _phrased(
    picks: np.ndarray,
    valid: np.ndarray,
    names: list[str],
    phrases: dict[str, Phrase],
    features: pd.DataFrame,
) -> np.ndarray:
    """The phrase of each valid pick (row, slot), one feature at a time: its picked values
    phrased once per key (`Phrase.keys`; a text value is its own key, missing is None)."""
    text = np.full(picks.shape, "", dtype=object)
    rows = np.broadcast_to(np.arange(len(picks))[:, None], picks.shape)
    for index in np.unique(picks[valid]):
        chosen = valid & (picks == index)
        column = features[names[index]]
        phrase = phrases[names[index]]
        values = column.to_numpy()[rows[chosen]]
        if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
            keys = phrase.keys(values)
            _, first, codes = np.unique(keys, return_index=True, return_inverse=True)
            said = [phrase(None if np.isnan(values[at]) else float(values[at])) for at in first]
        else:
            codes, uniques = pd.factorize(pd.Series(values.astype(object)), use_na_sentinel=True)
            said = [phrase(value) for value in [*uniques, None]]
        text[chosen] = np.array(said, dtype=object)[codes]
    return text


def _joined(text: np.ndarray, valid: np.ndarray, direction: str) -> np.ndarray:
    """Each row's valid phrases (a prefix of its slots), each ending in `direction`, joined
    by "; "."""
    ending = np.array(f" {direction}", dtype=object)
    joined = np.full(len(text), "", dtype=object)
    for slot in range(text.shape[1]):
        said = text[:, slot] + ending
        joined = np.where(valid[:, slot], joined + "; " + said if slot else said, joined)
    return joined
