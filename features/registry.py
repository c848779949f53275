"""The one registry of features: every column's name, in order, with a plain-language line.

Reason codes, the README and the MLflow feature list all read these descriptions. Descriptions
are written to be followed by the feature's value: "days since the last inbound interaction: 41".
"""

from __future__ import annotations

from closeprob.features.calendar import CALENDAR
from closeprob.features.snapshot_ranks import ranked_columns
from closeprob.features.spec import FeatureSpec, slug

RECENCY = {
    "deal_age_days": "days since the deal was created",
    "touches_total": "interactions logged on the deal so far (RFM frequency)",
    "touches_per_30d": "interactions per 30 days of the deal's life",
    "days_since_last_touch": "days since the last interaction of any kind (RFM recency)",
    "days_since_last_inbound": "days since the customer last reached out (inbound)",
    "days_since_last_outbound": "days since the team last reached out (outbound)",
    "amount_declared": "declared deal value (RFM monetary)",
    "interaction_value_total": "total value attached to interactions so far (offers, quotes)",
}

ENGAGEMENT_FIXED = {
    "engagement_trend_30d": (
        "change in activity: log interactions in the last 30 days vs the 30 before"
    ),
    "inbound_share_total": "share of directed interactions that were inbound, so far",
    "inbound_share_90d": "share of directed interactions that were inbound, last 90 days",
    "distinct_types_total": "distinct kinds of interaction so far",
    "distinct_channels_total": "distinct channels used so far",
    "distinct_types_30d": "distinct kinds of interaction in the last 30 days",
}

STAGE = {
    "current_stage": "current stage (value of the latest stage change)",
    "days_in_stage": "days since the latest stage change (or since creation)",
}

HISTORY_TEMPLATES = {
    "{who}_win_rate": "{who_text}'s win rate on deals closed before now (smoothed)",
    "{who}_closed_deals": "{who_text}'s deals closed before now",
    "{who}_avg_won_value": "{who_text}'s average won deal value before now",
    "{who}_open_deals": "{who_text}'s other deals open now",
}

HISTORY_WHO = {"owner_id": ("owner", "the owner"), "account_id": ("account", "the account")}


def window_features(spec: FeatureSpec) -> dict[str, str]:
    """Counts per window: all touches, inbound, outbound, and each interaction type."""
    described: dict[str, str] = {}
    for days in spec.windows_days:
        described[f"touches_{days}d"] = f"interactions in the last {days} days"
        described[f"inbound_{days}d"] = f"inbound interactions in the last {days} days"
        described[f"outbound_{days}d"] = f"outbound interactions in the last {days} days"
        for event_type in spec.event_types:
            described[f"n_{slug(event_type)}_{days}d"] = (
                f"'{event_type}' interactions in the last {days} days"
            )
    return described


def market_features(spec: FeatureSpec) -> dict[str, str]:
    """Activity against the market's at the same as_of (none when the spec's window is 0)."""
    days = spec.market_window_days
    if days <= 0:
        return {}
    short = {
        "touches_7d_vs_market": (
            "interactions in the last 7 days, as a multiple of an average open deal's (1 = as busy)"
        )
    }
    if days <= 7:
        short = {}
    return {
        f"market_touches_{days}d": (
            f"interactions per open deal in the last {days} days, across all open deals "
            "(the season's activity level)"
        ),
        f"touches_{days}d_vs_market": (
            f"interactions in the last {days} days, as a multiple of an average open deal's "
            "(1 = as busy)"
        ),
        **short,
        "lifetime_touches_vs_market": (
            "interactions per day over the deal's life, as a multiple of an average open deal's "
            "recent daily rate"
        ),
        "quiet_vs_market": (
            "interactions an average open deal logs in the time this deal has been quiet"
        ),
    }


STAGE_HISTORY = {
    "stage_moves_30d": "stage changes in the last 30 days",
    "stage_moved_back": "whether the deal ever moved back to an earlier stage (1 = yes)",
}

STAGE_WIN_RATE = {
    "stage_win_rate": (
        "win rate of deals that were in the current stage, among those closed before now (smoothed)"
    ),
}


def history_features(spec: FeatureSpec) -> dict[str, str]:
    described: dict[str, str] = {}
    for key in spec.history_keys:
        who, who_text = HISTORY_WHO[key]
        for name, text in HISTORY_TEMPLATES.items():
            described[name.format(who=who)] = text.format(who_text=who_text)
    return described


def attribute_features(spec: FeatureSpec) -> dict[str, str]:
    return {
        f"attr_{slug(name)}": f"declared {name} (known at creation)" for name in spec.attributes
    }


def rank_features(spec: FeatureSpec, described: dict[str, str]) -> dict[str, str]:
    """Percentile ranks within the as_of of the `described` columns that get one (none
    unless the spec asks for them)."""
    if not spec.snapshot_ranks:
        return {}
    return {
        f"{name}_pct": (
            f"percentile among the deals open at the same date (1 = highest) of: {described[name]}"
        )
        for name in ranked_columns(list(described))
    }


def feature_descriptions(spec: FeatureSpec) -> dict[str, str]:
    """Every model input column for `spec`, in model order, with its one-line description."""
    described = _base_descriptions(spec)
    # Last: build_features appends them to the assembled columns of each as_of.
    return described | rank_features(spec, described)


def _base_descriptions(spec: FeatureSpec) -> dict[str, str]:
    return {
        **RECENCY,
        **window_features(spec),
        **ENGAGEMENT_FIXED,
        **STAGE,
        **(STAGE_HISTORY if spec.stage_history else {}),
        **market_features(spec),
        **history_features(spec),
        **attribute_features(spec),
        **(CALENDAR if spec.calendar else {}),
        # Last: build_features appends it after the shards computed the current stage.
        **(STAGE_WIN_RATE if spec.stage_history and spec.stage_win_rate else {}),
    }


def categorical_features(spec: FeatureSpec) -> list[str]:
    """Columns LightGBM treats as categorical: the declared attributes."""
    return list(attribute_features(spec))
