"""Reasons are phrased once per key, not per row: values with one key read the same, and the
reasons equal those of a row-by-row loop that phrases every value itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.registry import feature_descriptions
from closeprob.features.spec import FeatureSpec
from closeprob.models.ranker import format_value
from closeprob.pipeline.sales_reasons import (
    DOWN,
    UP,
    reading_keys,
    sales_phrases,
    sales_reason_codes,
    share_keys,
)

SPEC = FeatureSpec(
    event_types=("MEETING", "email"),
    windows_days=(7, 30),
    attributes=("industry",),
    market_window_days=30,
    snapshot_ranks=True,
)

# Values where a rounding is a tie or a hair from one, next to plain and extreme ones.
near_ties = st.builds(
    lambda whole, digit, scale, nudge: (whole + digit / 10 + 0.05) * scale + nudge,
    st.integers(-120, 120),
    st.integers(0, 9),
    st.sampled_from([1.0, 0.1, 0.01, 1e-5, 10.0]),
    st.sampled_from([0.0, 1e-15, -1e-15, 1e-12, 5e-10, -5e-10, 1e-7]),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e3, 1e3),
    st.integers(-(10**7), 10**7).map(float),
    st.sampled_from([0.0, -0.0, 0.995, 0.9951, 99.95, 99.96, 0.05, 0.25, 2.25, 1e-300, 0.00015]),
    near_ties,
)


def same_text_per_key(keys: np.ndarray, texts: list[str]) -> bool:
    _, codes = np.unique(keys, return_inverse=True)
    said: dict[int, str] = {}
    return all(
        said.setdefault(int(code), text) == text for code, text in zip(codes, texts, strict=True)
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=40))
def test_numbers_with_one_reading_key_read_the_same(values: list[float]) -> None:
    array = np.array(values, dtype=float)
    assert same_text_per_key(reading_keys(array), [format_value(v) for v in values])


@settings(max_examples=300, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=40))
def test_numbers_with_one_share_key_read_the_same_percentage(values: list[float]) -> None:
    phrase = sales_phrases(SPEC)["inbound_share_total"]
    array = np.array(values, dtype=float)
    assert same_text_per_key(share_keys(array), [phrase(v) for v in values])


def naive_reasons(
    contributions: np.ndarray, features: pd.DataFrame, top: int
) -> tuple[list[str], list[str]]:
    """One row, one feature, one phrase at a time (missing values phrased as None)."""
    phrases = sales_phrases(SPEC)
    names = list(phrases)
    ups, downs = [], []
    for row in range(len(features)):
        effects = contributions[row, : len(names)]
        order = np.argsort(-effects, kind="stable")
        for picks, pushes, direction, out in (
            (order[:top], effects > 0, UP, ups),
            (order[::-1][:top], effects < 0, DOWN, downs),
        ):
            said = []
            for index in picks:
                if not pushes[index]:
                    break
                value = features[names[index]].iloc[row]
                value = None if pd.isna(value) else value
                said.append(f"{phrases[names[index]](value)} {direction}")
            out.append("; ".join(said))
    return ups, downs


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(1, 8), st.integers(1, 4))
def test_reasons_equal_those_of_a_row_by_row_loop(data: st.DataObject, rows: int, top: int) -> None:
    names = list(feature_descriptions(SPEC))
    columns = {
        name: data.draw(st.lists(numbers, min_size=rows, max_size=rows), label=name)
        for name in names
        if name not in ("attr_industry", "current_stage")
    }
    industry = data.draw(st.lists(st.sampled_from(["retail", "software", None]), min_size=rows))
    features = pd.DataFrame(columns).assign(
        attr_industry=pd.Series(industry[:rows], dtype=object),
        current_stage=data.draw(st.lists(st.sampled_from([1.0, 2.0, np.nan]), min_size=rows))[
            :rows
        ],
    )
    # Contributions with ties and zeros: the order of equal ones is the stable argsort's.
    steps = st.sampled_from([0.0, 0.5, -0.5, 1.0, -1.0, 0.25, -2.0])
    contributions = np.array(
        data.draw(
            st.lists(steps, min_size=rows * (len(names) + 1), max_size=rows * (len(names) + 1))
        )
    ).reshape(rows, len(names) + 1)
    up, down = sales_reason_codes(contributions, features, SPEC, top)
    expected_up, expected_down = naive_reasons(contributions, features, top)
    assert list(up) == expected_up
    assert list(down) == expected_down
