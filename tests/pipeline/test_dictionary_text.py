"""Interaction labels read as dictionaries (pandas categoricals) give what plain text gives:
the same typed values, the same errors and warnings, the same mapped values; and the reader
hands them over as dictionaries from CSV and Parquet alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.pipeline.config import DataConfig
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.dictionary_text import LABEL_COLUMNS, per_value
from closeprob.pipeline.io import read_table
from closeprob.pipeline.problems import Problems
from closeprob.pipeline.validate import validate_interactions
from closeprob.pipeline.values import map_values

labels = st.sampled_from(["email", " Email ", "CALL", "call", "", "   ", None, "inbound", "x"])
directions = st.sampled_from(["inbound", " Outbound", "OUTBOUND", "sideways", "", None])
rows = st.lists(
    st.tuples(
        st.sampled_from(["D1", "D2", None]),
        st.sampled_from(["2024-01-01", "2024-01-02", "bad", None]),
        labels,
        labels,
        directions,
    ),
    max_size=25,
)


def as_dictionaries(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({c: "category" for c in LABEL_COLUMNS if c in frame.columns})


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Dictionary columns decoded to pandas' string dtype (what the plain path holds)."""
    return frame.astype(
        {c: "str" for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    )


def typed_and_problems(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    problems = Problems(strict=False)
    deal_ids = pd.Series(["D1"], dtype="str")
    typed = validate_interactions(frame, "events.csv", deal_ids, "drop", problems, "drop")
    return typed, problems.errors, problems.warnings


@settings(max_examples=80, deadline=None)
@given(rows)
def test_dictionary_labels_validate_exactly_as_plain_text(table: list[tuple[object, ...]]) -> None:
    columns = ["deal_id", "occurred_at", "type", "channel", "direction"]
    frame = pd.DataFrame(table, columns=columns).astype("str")
    expected, errors, warned = typed_and_problems(frame)
    typed, dictionary_errors, dictionary_warned = typed_and_problems(as_dictionaries(frame))
    assert dictionary_errors == errors and dictionary_warned == warned
    for column in LABEL_COLUMNS:
        assert isinstance(typed[column].dtype, pd.CategoricalDtype), column
    pd.testing.assert_frame_equal(plain(typed), expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(labels, max_size=20))
def test_mapped_dictionary_values_are_the_mapped_plain_values(values: list[str | None]) -> None:
    frame = pd.DataFrame({"type": pd.Series(values, dtype="str")})
    mapping = {"type": {"EMAIL": "email", "call ": None, "x": "inbound"}}
    expected = map_values(frame, mapping)["type"]
    mapped = map_values(as_dictionaries(frame), mapping)["type"]
    assert isinstance(mapped.dtype, pd.CategoricalDtype)
    assert mapped.isna().tolist() == expected.isna().tolist()
    assert mapped.dropna().astype(str).tolist() == expected.dropna().astype(str).tolist()


def test_values_that_become_equal_share_one_category_and_missing_stays_missing() -> None:
    raw = pd.Series([" a", "a", "A ", None, "  "], dtype="category")
    stripped = per_value(raw, lambda s: s.str.strip().str.lower().where(lambda t: t != ""))
    assert list(stripped.cat.categories) == ["a"]
    assert stripped.cat.codes.tolist() == [0, 0, 0, -1, -1]
    assert stripped.cat.codes.dtype == np.int8


def write_events(folder: Path, suffix: str) -> Path:
    events = pd.DataFrame(
        {
            "deal_id": ["D1", "D1", "D2"],
            "occurred_at": ["2024-01-02", "2024-01-03", "2024-01-04"],
            "Kind": [" Email", "call", "call"],
            "channel": ["web", None, "phone"],
            "direction": ["INBOUND", "outbound", None],
            "value": ["1", None, "2"],
        }
    )
    path = folder / f"interactions{suffix}"
    if suffix == ".csv":
        events.to_csv(path, index=False)
    else:
        events.to_parquet(path, index=False)
    return path


def test_the_reader_hands_mapped_labels_over_as_dictionaries(tmp_path: Path) -> None:
    deals = pd.DataFrame(
        {
            "deal_id": ["D1", "D2"],
            "created_at": ["2024-01-01", "2024-01-01"],
            "closed_at": ["2024-02-01", None],
            "outcome": ["won", None],
        }
    )
    deals.to_csv(tmp_path / "deals.csv", index=False)
    read = {}
    for suffix in (".csv", ".parquet"):
        path = write_events(tmp_path, suffix)
        raw = read_table(path, ("Kind", "channel", "direction", "absent"))
        assert [str(raw[c].dtype) for c in ("Kind", "channel", "direction")] == ["category"] * 3
        assert raw["deal_id"].dtype == "str"
        data = DataConfig(
            deals=tmp_path / "deals.csv",
            interactions=path,
            columns={"interactions": {"type": "Kind"}},
            attributes=[],
        )
        events = load_dataset(data).interactions
        assert all(isinstance(events[c].dtype, pd.CategoricalDtype) for c in LABEL_COLUMNS)
        read[suffix] = plain(events)
        assert read[suffix]["type"].tolist() == ["Email", "call", "call"]
        assert read[suffix]["direction"].tolist()[:2] == ["inbound", "outbound"]
    pd.testing.assert_frame_equal(read[".csv"], read[".parquet"])
