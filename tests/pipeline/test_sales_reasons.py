"""Reasons as a salesperson says them, each in the direction of its contribution; the queue's
pass-through deal columns and the CSV's rounding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.registry import feature_descriptions
from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.readable_queue import rounded_for_people, with_deal_columns
from closeprob.pipeline.sales_reasons import DOWN, UP, sales_phrases, sales_reason_codes

SPEC = FeatureSpec(
    event_types=("MEETING", "email"),
    windows_days=(7, 30),
    attributes=("industry",),
    market_window_days=30,
)


def features_of(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    names = list(feature_descriptions(SPEC))
    frame = pd.DataFrame(rng.integers(0, 5, (rows, len(names))).astype(float), columns=names)
    return frame.assign(attr_industry="retail", current_stage="proposal")


def test_a_meeting_count_reads_as_a_salesperson_says_it() -> None:
    phrase = sales_phrases(SPEC)["n_meeting_30d"]
    assert [phrase(2.0), phrase(1.0), phrase(0.0)] == [
        "2 meetings in the last 30 days",
        "1 meeting in the last 30 days",
        "no meetings in the last 30 days",
    ]
    spec = FeatureSpec(event_types=("email_reply", "call"), windows_days=(7,))
    assert sales_phrases(spec)["n_email_reply_7d"](2.0) == "2 email replies in the last 7 days"
    assert sales_phrases(SPEC)["days_since_last_inbound"](float("nan")) == (
        "the customer has not reached out yet"
    )


@pytest.mark.parametrize("ranks", [False, True], ids=["plain", "with snapshot ranks"])
@pytest.mark.parametrize("calendar", [False, True], ids=["", "with calendar"])
def test_every_feature_has_a_phrase_without_jargon(ranks: bool, calendar: bool) -> None:
    spec = replace(SPEC, snapshot_ranks=ranks, calendar=calendar)
    phrases = sales_phrases(spec)
    assert list(phrases) == list(feature_descriptions(spec))
    texts = [phrase(3.0) for phrase in phrases.values()]
    jargon = ("RFM", "multiple of an average", "'MEETING'", "(value of", "percentile")
    assert not [t for t in texts if any(word in t for word in jargon)]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_every_reason_reads_in_the_direction_of_its_contribution(seed: int, top: int) -> None:
    """Each reason is traced back to its feature by its phrase: up reasons come from positive
    contributions and say so, down reasons from negative ones."""
    rng = np.random.default_rng(seed)
    features = features_of(6, rng)
    names = list(feature_descriptions(SPEC))
    contributions = rng.normal(0, 1, (6, len(names) + 1)) * rng.integers(0, 2, (6, len(names) + 1))
    up, down = sales_reason_codes(contributions, features, SPEC, top)
    phrases = sales_phrases(SPEC)
    for row in range(6):
        said = {
            phrases[n](features[n].iloc[row]): contributions[row, i] for i, n in enumerate(names)
        }
        for items, ending, sign in ((up[row], UP, 1), (down[row], DOWN, -1)):
            for item in filter(None, items.split("; ")):
                assert item.endswith(ending)
                assert np.sign(said[item.removesuffix(f" {ending}")]) == sign
        assert len(list(filter(None, up[row].split("; ")))) == min(
            top, (contributions[row, :-1] > 0).sum()
        )


def test_deal_columns_come_after_the_deal_id_and_the_csv_rounds_for_people() -> None:
    queue = pd.DataFrame(
        {"rank": [1, 2], "deal_id": ["D2", "D1"], "p_close": [0.40174648733711465, 0.1],
         "deal_value": [152502.96659316873, 10.0], "expected_value": [61266.5, 1.0],
         "rank_change": [3.0, float("nan")]}
    )  # fmt: skip
    deals = pd.DataFrame({"deal_id": ["D1", "D2"], "deal_name": ["Acme", "Globex"]})
    shown = rounded_for_people(with_deal_columns(queue, deals, ["deal_name"]))
    assert list(shown.columns)[:3] == ["rank", "deal_id", "deal_name"]
    assert shown["deal_name"].tolist() == ["Globex", "Acme"]
    assert shown["p_close"].tolist() == [0.402, 0.1]
    assert shown["deal_value"].tolist() == [152503, 10] and shown["deal_value"].dtype == "Int64"
    assert shown["rank_change"].dtype == "Int64" and shown["rank_change"].isna().tolist() == [
        False,
        True,
    ]
