"""Fuzzing the data contract: corrupted inputs end in features or in the project's own error.

A small valid pair of raw frames (text, as `pipeline.io.read_table` returns a CSV) goes through
random corruptions, then `validate_deals`, `validate_interactions`, the open-deal snapshot at an
`as_of` and `build_features`. The only allowed outcomes are a clean feature frame, with one row
per open deal, or a `CloseprobError`. The bugs it found (dates far outside a CRM's range, and
MultiIndex frames from Parquet) are fixed, and pinned by the regression tests at the end.
"""

from __future__ import annotations

import datetime as dt
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from closeprob.features.build import build_features
from closeprob.features.snapshots import open_deal_snapshots
from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.errors import CloseprobError, DataContractError
from closeprob.pipeline.io import read_table
from closeprob.pipeline.scoring import default_as_of
from closeprob.pipeline.validate import validate_deals, validate_interactions
from tests.conftest import utc

EVENT_TYPES = ("email", "call", "meeting", "stage_change")
HISTORY_KEYS = ("owner_id", "account_id")
AS_OF = utc("2024-03-01")

BASE_DEALS = pd.DataFrame(
    {
        "deal_id": ["D1", "D2", "D3", "D4", "D5", "D6", "D7", "D8"],
        "created_at": [
            "2023-10-02",
            "2023-11-15T09:30:00",
            "2023-12-01T08:00:00+01:00",
            "2024-01-05",
            "2024-01-20T17:45:10Z",
            "2024-02-10",
            "2024-03-05",  # created after AS_OF
            "2023-09-01",
        ],
        "closed_at": [
            None,
            "2024-01-20",
            "2024-02-10T16:00:00",
            None,
            "2024-03-15",  # closes after AS_OF: open then
            None,
            None,
            "2024-03-01T00:00:00",  # closes exactly at AS_OF: still open then (point_in_time)
        ],
        "outcome": [None, "won", "lost", None, "Won", None, None, "lost"],
        "amount": ["12000", "5000.50", None, "800", "2500", None, "1500", "0"],
        "account_id": ["A1", "A2", "A1", None, "A3", "A2", "A4", "A3"],
        "owner_id": ["U1", "U1", "U2", "U2", "U3", "U3", "U1", "U2"],
        "source": ["web", "referral", "event", "web", None, "outbound", "web", "referral"],
    },
    dtype="str",
)

_EVENTS = [
    # deal_id, occurred_at, type, channel, direction, value
    ("D1", "2023-10-03T10:00:00", "email", "email", "outbound", None),
    ("D1", "2023-10-10T15:30:00+02:00", "call", "phone", "inbound", None),
    ("D1", "2023-11-01", "stage_change", None, None, "2"),
    ("D1", "2024-01-15T09:00:00", "meeting", "video", "outbound", None),
    ("D1", "2024-02-28T23:59:59", "email", "email", "Inbound", None),
    ("D1", "2024-03-01T00:00:00", "call", "phone", "outbound", None),
    ("D2", "2023-11-16", "email", "email", "outbound", None),
    ("D2", "2023-12-01T12:00:00Z", "quote", "email", "outbound", "5000"),
    ("D2", "2024-01-10", "stage_change", None, None, "4"),
    ("D2", "2024-01-19T18:00:00-05:00", "meeting", "onsite", "inbound", None),
    ("D3", "2023-12-02", "web_visit", "web", "inbound", None),
    ("D3", "2024-01-03", "email", "email", "outbound", None),
    ("D3", "2024-02-01", "call", "phone", None, None),
    ("D4", "2024-01-06T08:15:00", "email", "email", "outbound", None),
    ("D4", "2024-01-20", "email", "email", "inbound", None),
    ("D4", "2024-02-14", "stage_change", None, None, "1"),
    ("D4", "2024-02-29T11:00:00+05:30", "call", "phone", "outbound", None),
    ("D5", "2024-01-21", "meeting", "video", "outbound", None),
    ("D5", "2024-02-02", "stage_change", None, None, "3"),
    ("D5", "2024-02-20T07:00:00", "quote", "email", "outbound", "2400.5"),
    ("D5", "2024-03-10", "email", "email", "inbound", None),
    ("D6", "2024-02-11", "web_visit", "web", "inbound", None),
    ("D6", "2024-02-25T13:00:00", "email", "email", "outbound", None),
    ("D7", "2024-03-06", "email", "email", "outbound", None),
    ("D8", "2023-09-05", "call", "phone", "outbound", None),
    ("D8", "2023-12-12", "meeting", "onsite", "inbound", None),
    ("D8", "2024-02-15", "stage_change", None, None, "5"),
    ("D8", "2024-02-29T22:00:00-03:00", "email", "email", "inbound", None),
]
BASE_INTERACTIONS = pd.DataFrame(
    _EVENTS, columns=["deal_id", "occurred_at", "type", "channel", "direction", "value"]
).astype("str")

DEALS_COLUMNS = tuple(BASE_DEALS.columns)
INTERACTIONS_COLUMNS = tuple(BASE_INTERACTIONS.columns)

EXTREME_DATES = (
    "1900-01-01",
    "2262-04-11",
    "2262-04-11T00:00:00Z",
    "1900-01-01T00:00:00+14:00",
    "0001-01-01",
    "9999-12-31",
)
OFFSET_TIMES = (
    "2024-01-15T10:00:00+05:30",
    "2024-01-15T23:59:59-12:00",
    "2024-02-29T00:00:00Z",
    "2024-03-01T00:30:00+01:00",
    "2024-02-29T23:59:59.999999-00:00",
    "2024-02-01T12:00:00.5+14:00",
    "2024-02-20T08:00:00-0700",
)
NUMBERS = ("0", "-1", "-0.0", "12500.50", "1e308", "1e400", "inf", "-inf", "Infinity", "NaN")
TEXT = ("abc", "N/A", "null", "1,000", "0x1F", "2024-13-45", "２０２４-01-01", "yesterday")
OUTCOME_TEXT = ("won", "LOST", " Won ", "pending", "open", "1")
ID_TEXT = ("D1", " D2 ", "d3", "D404", "nan", "Inbound", "sideways")
BLANKS = ("", " ", "\t", " \n ")
VALUES = st.one_of(
    st.none(),
    st.sampled_from(
        EXTREME_DATES + OFFSET_TIMES + NUMBERS + TEXT + OUTCOME_TEXT + ID_TEXT + BLANKS
    ),
    st.text(max_size=8),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats().map(repr),
)
OFFSET_LISTS = st.lists(
    st.sampled_from([0, 330, 345, -180, -720, 840]), min_size=1, max_size=4
).map(tuple)
RETYPES = (
    "int",
    "nullable_int",
    "float",
    "bool",
    "object",
    "category",
    "pyarrow_string",
    "decimal",
    "date_objects",
    "datetime_utc",
    "datetime_naive",
    "datetime_ms",
    "datetime_paris",
)
INDEXES = ("duplicated", "strings", "reversed", "named", "multi")


def _columns(table: str) -> st.SearchStrategy[str]:
    return st.sampled_from(DEALS_COLUMNS if table == "deals" else INTERACTIONS_COLUMNS)


@st.composite
def corruptions(draw: st.DrawFn) -> tuple[Any, ...]:
    """One corruption as a readable tuple: (kind, table, arguments...)."""
    table = draw(st.sampled_from(["deals", "interactions"]))
    kind = draw(
        st.sampled_from(
            [
                "set_cell",
                "set_cell",
                "set_cell",
                "pad_cell",
                "drop_column",
                "duplicate_row",
                "swap_columns",
                "retype",
                "truncate",
                "reindex",
                "reoffset",
                "append_unknown_deal",
            ]
        )
    )
    row = draw(st.integers(min_value=0, max_value=63))
    if kind == "set_cell":
        return (kind, table, draw(_columns(table)), row, draw(VALUES))
    if kind in ("pad_cell", "drop_column"):
        return (kind, table, draw(_columns(table)), *((row,) if kind == "pad_cell" else ()))
    if kind == "duplicate_row":
        return (kind, table, row, draw(st.integers(min_value=1, max_value=3)))
    if kind == "swap_columns":
        return (kind, table, draw(_columns(table)), draw(_columns(table)))
    if kind == "retype":
        return (kind, table, draw(_columns(table)), draw(st.sampled_from(RETYPES)))
    if kind == "truncate":
        return (kind, table, draw(st.integers(min_value=0, max_value=3)))
    if kind == "reindex":
        return (kind, table, draw(st.sampled_from(INDEXES)))
    if kind == "reoffset":
        return (kind, table, draw(_columns(table)), draw(OFFSET_LISTS))
    return (kind, "interactions", row, draw(st.sampled_from(["D404", "d1", "D1 x", "D1\x00"])))


def _retyped(column: pd.Series, kind: str) -> pd.Series:
    """The column as another dtype, as a Parquet file or a careless export might hold it."""
    n = len(column)
    if kind == "int":
        return pd.Series(np.arange(n, dtype=np.int64) * 86_400, index=column.index)
    if kind == "float":
        values = np.linspace(-1e6, 1e6, n)
        values[::3] = np.nan
        return pd.Series(values, index=column.index)
    if kind == "bool":
        return pd.Series(np.arange(n) % 2 == 0, index=column.index)
    if kind == "object":
        pool = [1, "x", 2.5, None, True, pd.Timestamp("2024-01-01"), float("nan")]
        return pd.Series([pool[i % len(pool)] for i in range(n)], index=column.index, dtype=object)
    if kind == "nullable_int":
        return pd.Series([pd.NA, *range(1, n)][:n], index=column.index, dtype="Int64")
    if kind == "category":
        return column.astype("category")
    if kind == "pyarrow_string":
        return column.astype("string[pyarrow]")
    if kind == "decimal":
        return pd.Series([Decimal(i) / 3 for i in range(n)], index=column.index, dtype=object)
    text = column.astype("str").where(column.notna())
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    if kind == "date_objects":
        return pd.Series([t.date() if pd.notna(t) else None for t in parsed], index=column.index)
    return {
        "datetime_utc": parsed,
        "datetime_naive": parsed.dt.tz_localize(None),
        "datetime_ms": parsed.dt.as_unit("ms"),
        "datetime_paris": parsed.dt.tz_convert("Europe/Paris"),
    }[kind]


COLUMN_KINDS = ("set_cell", "pad_cell", "drop_column", "swap_columns", "retype", "reoffset")


def at_offsets(column: pd.Series, offsets_minutes: tuple[int, ...]) -> pd.Series:
    """Each readable timestamp as the same instant at another UTC offset (cycled by row);
    other cells unchanged. Offset 0 is written 'Z' on odd rows."""
    text = column.astype("str").where(column.notna())
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    rewritten = []
    for row, (raw, instant) in enumerate(zip(column, parsed, strict=True)):
        minutes = offsets_minutes[row % len(offsets_minutes)]
        if pd.isna(instant):
            rewritten.append(raw)
            continue
        local = instant.tz_convert(dt.timezone(dt.timedelta(minutes=minutes))).isoformat()
        rewritten.append(local.replace("+00:00", "Z") if row % 2 else local)
    return pd.Series(rewritten, index=column.index, dtype="str")


def _index_like(index: pd.Index, kind: str) -> pd.Index:
    """Row labels a Parquet file can restore (read_table's CSVs always have a RangeIndex)."""
    n = len(index)
    if kind == "duplicated":
        return pd.Index([0] * n)
    if kind == "strings":
        return pd.Index([f"row {i}" for i in range(n)])
    if kind == "reversed":
        return pd.Index(range(n - 1, -1, -1))
    if kind == "multi":
        return pd.MultiIndex.from_arrays([["x"] * n, range(n)])
    return pd.Index(range(10, 10 + n), name="region")


def apply_corruption(frame: pd.DataFrame, corruption: tuple[Any, ...]) -> pd.DataFrame:
    """A corrupted copy of `frame`; a corruption naming a column already dropped is a no-op."""
    kind, _, *args = corruption
    frame = frame.copy()
    named = args[:2] if kind == "swap_columns" else args[:1]
    if kind in COLUMN_KINDS and not set(named) <= set(frame.columns):
        return frame
    if kind in ("set_cell", "pad_cell") and len(frame):
        column, row = args[:2]
        value = args[2] if kind == "set_cell" else f"  {frame[column].iloc[row % len(frame)]}\t"
        if not isinstance(frame[column].dtype, pd.StringDtype):
            # A retyped column (int, bool, ...) takes any value only as object.
            frame[column] = frame[column].astype(object)
        frame.iloc[row % len(frame), list(frame.columns).index(column)] = value
    elif kind == "drop_column":
        frame = frame.drop(columns=args[0])
    elif kind == "duplicate_row" and len(frame):
        row, times = args
        frame = pd.concat([frame, *[frame.iloc[[row % len(frame)]]] * times], ignore_index=True)
    elif kind == "swap_columns":
        first, second = args
        frame[first], frame[second] = frame[second].to_numpy(), frame[first].to_numpy()
    elif kind == "retype":
        column, to = args
        frame[column] = _retyped(frame[column], to)
    elif kind == "truncate":
        frame = frame.iloc[: args[0]]
    elif kind == "reoffset":
        frame[args[0]] = at_offsets(frame[args[0]], args[1])
    elif kind == "reindex":
        frame.index = _index_like(frame.index, args[0])
    elif kind == "append_unknown_deal" and len(frame) and "deal_id" in frame.columns:
        row, deal_id = args
        extra = frame.iloc[[row % len(frame)]].astype(object)
        extra["deal_id"] = deal_id
        frame = pd.concat([frame, extra], ignore_index=True)
    return frame


def corrupt(
    corruption_list: list[tuple[Any, ...]],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = {"deals": BASE_DEALS, "interactions": BASE_INTERACTIONS}
    for corruption in corruption_list:
        raw[corruption[1]] = apply_corruption(raw[corruption[1]], corruption)
    return raw["deals"], raw["interactions"]


def validate(
    raw_deals: pd.DataFrame,
    raw_interactions: pd.DataFrame,
    unknown_deals: Literal["fail", "drop"] = "fail",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables through the data contract, as `pipeline.dataset.load_dataset` does."""
    deals = validate_deals(raw_deals, "deals.csv", ["source"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*dropped \d+ interactions of deals missing")
        interactions = validate_interactions(
            raw_interactions,
            "interactions.csv",
            deals["deal_id"],
            unknown_deals,
        )
    return deals, interactions


def featurise(deals: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Features of every deal open at `as_of`, with the history keys training would use."""
    spec = FeatureSpec(
        event_types=EVENT_TYPES,
        attributes=("source",),
        # As pipeline/train.py does: owner and account history only where the column exists.
        history_keys=tuple(k for k in HISTORY_KEYS if k in deals.columns),
    )
    snapshots = open_deal_snapshots(deals, pd.DatetimeIndex([as_of]))
    return build_features(deals, interactions, snapshots, spec)


def resolve_as_of(
    as_of: pd.Timestamp | None, deals: pd.DataFrame, interactions: pd.DataFrame
) -> pd.Timestamp:
    """`as_of` itself, or the default of `make predict` (one second after the data end)."""
    return as_of if as_of is not None else default_as_of(Dataset(deals, interactions, None))


def check_features(
    features: pd.DataFrame, deals: pd.DataFrame, interactions: pd.DataFrame, as_of: pd.Timestamp
) -> None:
    """One row per open deal (naive filter), and touch counts equal to a naive count."""
    open_now = deals[(deals["created_at"] < as_of) & ~(deals["closed_at"] < as_of)]
    assert features["deal_id"].is_unique
    assert sorted(features["deal_id"]) == sorted(open_now["deal_id"])
    assert (features["as_of"] == as_of).all()
    past = interactions[interactions["occurred_at"] < as_of]
    touches = past["deal_id"].value_counts().reindex(features["deal_id"], fill_value=0)
    np.testing.assert_array_equal(features["touches_total"].to_numpy(), touches.to_numpy())


# None is the default of `make predict`; 01:00 UTC is exactly D8's last event.
AS_OFS = st.sampled_from(
    [AS_OF, utc("2024-03-01T01:00:00"), utc("2024-01-20"), utc("2023-01-01"), None]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    corruption_list=st.lists(corruptions(), max_size=4),
    as_of=AS_OFS,
    unknown_deals=st.sampled_from(["fail", "drop"]),
)
def test_corrupted_inputs_end_in_features_for_every_open_deal_or_a_closeprob_error(
    corruption_list: list[tuple[Any, ...]],
    as_of: pd.Timestamp | None,
    unknown_deals: Literal["fail", "drop"],
) -> None:
    """Validation refuses with a CloseprobError, or the features hold one row per deal open at
    `as_of` (a naive filter) with touch counts equal to a naive count; nothing else is raised."""
    raw_deals, raw_interactions = corrupt(corruption_list)
    try:
        deals, interactions = validate(raw_deals, raw_interactions, unknown_deals)
        as_of = resolve_as_of(as_of, deals, interactions)
        features = featurise(deals, interactions, as_of)
    except CloseprobError as error:
        event(f"refused: {type(error).__name__}")
        return
    event(f"features built ({'some' if len(features) else 'no'} open deals)")
    check_features(features, deals, interactions, as_of)


def test_the_base_frames_are_what_read_table_returns_for_their_csv(tmp_path: Path) -> None:
    for name, frame in (("deals.csv", BASE_DEALS), ("interactions.csv", BASE_INTERACTIONS)):
        frame.to_csv(tmp_path / name, index=False)
        pd.testing.assert_frame_equal(read_table(tmp_path / name), frame)


def test_the_uncorrupted_base_frames_give_features_for_every_open_deal() -> None:
    deals, interactions = validate(BASE_DEALS, BASE_INTERACTIONS)
    features = featurise(deals, interactions, AS_OF)
    check_features(features, deals, interactions, AS_OF)
    assert sorted(features["deal_id"]) == ["D1", "D4", "D5", "D6", "D8"]


@settings(max_examples=25, deadline=None)
@given(
    created=OFFSET_LISTS,
    closed=OFFSET_LISTS,
    occurred=OFFSET_LISTS,
    as_of=st.sampled_from([AS_OF, None]),
)
def test_timestamps_written_at_other_offsets_change_no_feature(
    created: tuple[int, ...],
    closed: tuple[int, ...],
    occurred: tuple[int, ...],
    as_of: pd.Timestamp | None,
) -> None:
    """The same instants with mixed UTC offsets give the same features as the originals."""
    raw_deals = BASE_DEALS.assign(
        created_at=at_offsets(BASE_DEALS["created_at"], created),
        closed_at=at_offsets(BASE_DEALS["closed_at"], closed),
    )
    raw_interactions = BASE_INTERACTIONS.assign(
        occurred_at=at_offsets(BASE_INTERACTIONS["occurred_at"], occurred)
    )
    deals, interactions = validate(BASE_DEALS, BASE_INTERACTIONS)
    as_of = resolve_as_of(as_of, deals, interactions)
    expected = featurise(deals, interactions, as_of)
    actual = featurise(*validate(raw_deals, raw_interactions), as_of)
    pd.testing.assert_frame_equal(actual, expected)


# --- bugs found by the fuzzer, pinned until fixed -------------------------------------------


def _tiny_deals(**changes: list[str | None]) -> pd.DataFrame:
    raw: dict[str, list[str | None]] = {
        "deal_id": ["D1", "D2"],
        "created_at": ["2024-01-01", "2024-01-02"],
        "closed_at": [None, None],
        "outcome": [None, None],
        "source": ["web", "web"],
        "owner_id": ["U1", "U2"],
    }
    return pd.DataFrame(raw | changes, dtype="str")


def _tiny_interactions(**changes: list[str | None]) -> pd.DataFrame:
    raw: dict[str, list[str | None]] = {
        "deal_id": ["D1", "D2", "D2"],
        "occurred_at": ["2024-01-05", "2024-01-06", "2024-02-06"],
        "type": ["email", "call", "call"],
    }
    return pd.DataFrame(raw | changes, dtype="str")


def _run(
    raw_deals: pd.DataFrame, raw_interactions: pd.DataFrame, as_of: pd.Timestamp | None
) -> None:
    """Validate and featurise; a CloseprobError is an acceptable answer, as in the fuzz test."""
    try:
        deals, interactions = validate(raw_deals, raw_interactions)
        as_of = resolve_as_of(as_of, deals, interactions)
        features = featurise(deals, interactions, as_of)
    except CloseprobError:
        return
    check_features(features, deals, interactions, as_of)


OUT_OF_RANGE = r"has timestamps outside 1900–2199"


def test_a_deal_created_in_year_1_is_refused_by_the_contract() -> None:
    """Found by this fuzzer: it used to crash open_deal_snapshots (OutOfBoundsDatetime)."""
    with pytest.raises(DataContractError, match=rf"column 'created_at' {OUT_OF_RANGE}"):
        validate(_tiny_deals(created_at=["0001-01-01", "2024-01-02"]), _tiny_interactions())


def test_a_deal_closed_in_year_9999_is_refused_by_the_contract() -> None:
    deals = _tiny_deals(closed_at=["9999-12-31", None], outcome=["won", None])
    with pytest.raises(DataContractError, match=rf"column 'closed_at' {OUT_OF_RANGE}"):
        validate(deals, _tiny_interactions())


def test_an_interaction_in_year_9999_is_refused_by_the_contract() -> None:
    interactions = _tiny_interactions(occurred_at=["2024-01-05", "2024-01-06", "9999-12-31"])
    with pytest.raises(DataContractError, match=rf"column 'occurred_at' {OUT_OF_RANGE}"):
        validate(_tiny_deals(), interactions)


def test_an_interaction_in_year_1_is_refused_before_it_can_corrupt_other_deals() -> None:
    """Found by this fuzzer: events 544+ years apart overflowed the per-deal key range of
    features/timeline.py and silently zeroed other deals' features."""
    interactions = _tiny_interactions(occurred_at=["0001-01-01", "2024-01-06", "2024-02-06"])
    with pytest.raises(DataContractError, match=rf"column 'occurred_at' {OUT_OF_RANGE}"):
        validate(_tiny_deals(), interactions)


def _with_multiindex(frame: pd.DataFrame) -> pd.DataFrame:
    """As `read_table` returns a Parquet file written from `frame.set_index([a, b])`."""
    return frame.set_axis(pd.MultiIndex.from_arrays([["x"] * len(frame), range(len(frame))]))


def _featurised(raw_deals: pd.DataFrame, raw_interactions: pd.DataFrame) -> pd.DataFrame:
    """Validate and featurise with no error allowed, and check the result as the fuzz test does."""
    deals, interactions = validate(raw_deals, raw_interactions)
    features = featurise(deals, interactions, AS_OF)
    check_features(features, deals, interactions, AS_OF)
    return features


def test_a_deals_table_with_a_multiindex_is_validated_and_featurised() -> None:
    """Found by this fuzzer: it used to raise TypeError in validate_deals."""
    features = _featurised(_with_multiindex(_tiny_deals()), _tiny_interactions())
    assert features["deal_id"].tolist() == ["D1", "D2"]
    assert features["touches_total"].tolist() == [1.0, 2.0]


def test_an_interactions_table_with_a_multiindex_is_validated_and_featurised() -> None:
    features = _featurised(_tiny_deals(), _with_multiindex(_tiny_interactions()))
    assert features["deal_id"].tolist() == ["D1", "D2"]
    assert features["touches_total"].tolist() == [1.0, 2.0]
