"""The benchmark feature set computed the Featuretools way, for `make bench`.

An EntitySet holds `deals` (index `deal_id`, time index `created_at`) as the parent of
`interactions` (made index, time index `occurred_at`). Explicit feature definitions are
evaluated with `ft.calculate_feature_matrix` on a cutoff-time frame with one row per distinct
snapshot (`deal_id`, `time` = `as_of`):

- `deal_age_days`: `TimeSince(created_at, unit="days")` on deals;
- `days_since_last_touch`: `TimeSinceLast(occurred_at, unit="days")`, and
  `days_since_last_inbound` the same with `where=direction == "inbound"`;
- `distinct_types_30d`: `NumUnique(type)` with a 30-day training window;
- `n_<type>_<w>d`: `Count(interactions, where=type == <type>)`, one call per window w
  (7, 30, 90) with `training_window=w days`.

Semantics are aligned with the pandas reference (`tests/features/reference.py`), which uses
events in [as_of − w, as_of), exactly:

- Featuretools includes data *at* the cutoff by default (`time <= cutoff`) and then keeps
  `time > cutoff − window`, i.e. the window (cutoff − w, cutoff]. Passing
  `include_cutoff_time=False` flips both bounds to `cutoff − w <= time < cutoff`, which is the
  reference window, while the time handed to `TimeSince`/`TimeSinceLast` stays the true
  `as_of`. No shifted cutoff (as_of − 1 s) is needed, so day columns are seconds / 86400
  from the true `as_of` and nothing depends on timestamps being whole seconds.
- A training window also filters the *target* dataframe: without last time indexes, deals
  created more than w days before `as_of` would vanish from the window's calculation. The
  EntitySet therefore gets last time indexes; deals that still drop out (no event in the
  window) come back as missing rows and are filled with 0, as are empty counts.
- The target rows are time-filtered too: a snapshot at or before its deal's `created_at` finds
  no deal, so it gets NaN age and recency and zero counts here, while the reference gives an
  age <= 0 and counts any events logged before creation. Benchmark snapshots always come after
  creation (and no event precedes it), so this never arises there.
- Featuretools wants one time zone; every timestamp is converted to naive UTC before it enters
  the EntitySet, and the output keeps the snapshots' own `as_of`.
- Results are computed once per distinct (deal_id, as_of) and reindexed onto the snapshots, so
  the output follows the snapshots' row order even with repeated rows.

Featuretools 1.31 (through Woodwork) does not run on pandas 3, which closeprob needs, so this
script is standalone and runs in its own virtual environment with pandas < 3; it imports
nothing from closeprob. It prints one JSON line: engine, rows, `load_s` (reading the Parquet
files), `compute_s` (EntitySet, feature calculation and post-processing; writing is untimed)
and the Featuretools and pandas versions.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
import warnings
from pathlib import Path

import pandas as pd

warnings.filterwarnings("ignore")
logging.getLogger("featuretools").setLevel(logging.ERROR)
logging.getLogger("woodwork").setLevel(logging.ERROR)

import featuretools as ft  # noqa: E402  (after the warning filters, to silence import noise)
from featuretools.primitives import Count, NumUnique, TimeSince, TimeSinceLast  # noqa: E402

WINDOWS = (7, 30, 90)
DISTINCT_WINDOW = 30
KEY = ["deal_id", "time"]


def slug(event_type: str) -> str:
    """Column-safe name of an event type."""
    return re.sub(r"[^0-9a-z]+", "_", event_type.lower()).strip("_")


def naive_utc(times: pd.Series) -> pd.Series:
    """UTC timestamps as tz-naive nanosecond datetimes, the form Featuretools handles."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")


def load(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Deals, interactions, snapshots (only the columns used) and the event types to count."""
    deals = pd.read_parquet(data / "deals.parquet", columns=["deal_id", "created_at"])
    interactions = pd.read_parquet(
        data / "interactions.parquet", columns=["deal_id", "occurred_at", "type", "direction"]
    )
    snapshots = pd.read_parquet(data / "snapshots.parquet", columns=["deal_id", "as_of"])
    event_types = json.loads((data / "types.json").read_text())
    return deals, interactions, snapshots, event_types


def build_entityset(deals: pd.DataFrame, interactions: pd.DataFrame) -> ft.EntitySet:
    """Deals as parent, interactions as child, both time-indexed, with last time indexes."""
    es = ft.EntitySet(id="crm")
    es.add_dataframe(
        dataframe_name="deals",
        dataframe=deals.assign(created_at=naive_utc(deals["created_at"])),
        index="deal_id",
        time_index="created_at",
        logical_types={"deal_id": "Unknown", "created_at": "Datetime"},
    )
    es.add_dataframe(
        dataframe_name="interactions",
        dataframe=interactions.assign(occurred_at=naive_utc(interactions["occurred_at"])),
        index="interaction_id",
        make_index=True,
        time_index="occurred_at",
        logical_types={
            "deal_id": "Unknown",
            "occurred_at": "Datetime",
            "type": "Categorical",
            "direction": "Categorical",
        },
    )
    es.add_relationship("deals", "deal_id", "interactions", "deal_id")
    es.add_last_time_indexes()
    return es


def unwindowed_features(es: ft.EntitySet) -> list[ft.FeatureBase]:
    """Deal age and recency: computed on all history before the cutoff."""
    events = es["interactions"].ww
    inbound = ft.Feature(events["direction"]) == "inbound"
    return [
        ft.Feature(es["deals"].ww["created_at"], primitive=TimeSince(unit="days")).rename(
            "deal_age_days"
        ),
        ft.Feature(
            events["occurred_at"], parent_dataframe_name="deals", primitive=TimeSinceLast("days")
        ).rename("days_since_last_touch"),
        ft.Feature(
            events["occurred_at"],
            parent_dataframe_name="deals",
            primitive=TimeSinceLast("days"),
            where=inbound,
        ).rename("days_since_last_inbound"),
    ]


def window_features(es: ft.EntitySet, days: int, event_types: list[str]) -> list[ft.FeatureBase]:
    """Per-type counts (and, for the 30-day window, distinct types) for one training window."""
    events = es["interactions"].ww
    event_type = ft.Feature(events["type"])
    features = [
        ft.Feature(
            events[events.index],
            parent_dataframe_name="deals",
            primitive=Count,
            where=event_type == name,
        ).rename(f"n_{slug(name)}_{days}d")
        for name in event_types
    ]
    if days == DISTINCT_WINDOW:
        distinct = ft.Feature(events["type"], parent_dataframe_name="deals", primitive=NumUnique)
        features.insert(0, distinct.rename("distinct_types_30d"))
    return features


def feature_columns(event_types: list[str]) -> list[str]:
    """Output feature columns, in order: recency first, then the zero-filled counts."""
    counts = [f"n_{slug(name)}_{days}d" for days in WINDOWS for name in event_types]
    return [
        "deal_age_days",
        "days_since_last_touch",
        "days_since_last_inbound",
        "distinct_types_30d",
        *counts,
    ]


def calculate(
    features: list[ft.FeatureBase],
    es: ft.EntitySet,
    cutoff: pd.DataFrame,
    days: int | None,
    n_jobs: int,
) -> pd.DataFrame:
    """One feature-matrix call, events strictly before the cutoff, optionally windowed."""
    return ft.calculate_feature_matrix(
        features,
        entityset=es,
        cutoff_time=cutoff,
        training_window=None if days is None else f"{days} days",
        include_cutoff_time=False,
        cutoff_time_in_index=True,
        n_jobs=n_jobs,
        verbose=False,
    )


def compute(
    deals: pd.DataFrame,
    interactions: pd.DataFrame,
    snapshots: pd.DataFrame,
    event_types: list[str],
    n_jobs: int,
) -> pd.DataFrame:
    """The benchmark set, one row per snapshot in the snapshots' order."""
    es = build_entityset(deals, interactions)
    rows = pd.DataFrame({"deal_id": snapshots["deal_id"], "time": naive_utc(snapshots["as_of"])})
    cutoff = rows.drop_duplicates(ignore_index=True)
    matrices = [calculate(unwindowed_features(es), es, cutoff, None, n_jobs)]
    for days in WINDOWS:
        matrices.append(calculate(window_features(es, days, event_types), es, cutoff, days, n_jobs))
    matrix = pd.concat(matrices, axis=1)
    matrix.index = matrix.index.set_names(KEY)
    columns = feature_columns(event_types)
    matrix = matrix.reindex(pd.MultiIndex.from_frame(rows))[columns].astype("float64")
    counted = columns[3:]
    matrix[counted] = matrix[counted].fillna(0.0)
    keys = snapshots[["deal_id", "as_of"]].reset_index(drop=True)
    return pd.concat([keys, matrix.reset_index(drop=True)], axis=1)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with the Parquet inputs")
    parser.add_argument("--out", type=Path, required=True, help="output Parquet file")
    parser.add_argument(
        "--n-jobs", type=int, default=1, help="Featuretools workers (other than 1 needs dask)"
    )
    return parser.parse_args()


def main() -> None:
    """Load, compute (timed separately), write, and print the JSON summary line."""
    args = parse_args()
    start = time.perf_counter()
    deals, interactions, snapshots, event_types = load(args.data)
    loaded = time.perf_counter()
    out = compute(deals, interactions, snapshots, event_types, args.n_jobs)
    computed = time.perf_counter()
    out.to_parquet(args.out, index=False)
    summary = {
        "engine": "featuretools",
        "rows": len(out),
        "load_s": round(loaded - start, 3),
        "compute_s": round(computed - loaded, 3),
        "featuretools": ft.__version__,
        "pandas": pd.__version__,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
