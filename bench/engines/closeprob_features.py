"""The benchmark feature set by closeprob's engine, or by the straightforward pandas reference.

    .venv/bin/python bench/engines/closeprob_features.py --data DIR --out F.parquet \
        --engine closeprob|reference

`DIR` is what `bench/generate.py` writes (the contract is in `bench/engines/duckdb_features.py`
and `bench/benchmark.py`). `closeprob` runs `bench/benchmark.py`'s `benchmark_features`, the
`Timeline` primitives `build_features` uses; `reference` runs `tests/features/reference.py`, the
join-and-filter version the tests use as the oracle. Only the needed columns are read, strings as
Parquet dictionaries (pandas categoricals), as a batch job over Parquet would. The last line on
stdout is one JSON object: engine, rows, features (columns but deal_id and as_of), load_s
(reading), compute_s (features from the frames in memory), pandas (its version). Writing the
output is not timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa

# The repository root, so that the bench-only engine (bench/) and the test oracle (tests/) import.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.benchmark import benchmark_features
from tests.features.reference import reference_features

ENGINES = {"closeprob": benchmark_features, "reference": reference_features}


def read(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """Deals, interactions, snapshots and event types, only the columns the features use."""
    deals = pd.read_parquet(data / "deals.parquet", columns=["deal_id", "created_at"])
    interactions = pd.read_parquet(
        data / "interactions.parquet",
        columns=["deal_id", "occurred_at", "type", "direction"],
        read_dictionary=["deal_id", "type", "direction"],
    )
    snapshots = pd.read_parquet(data / "snapshots.parquet", columns=["deal_id", "as_of"])
    event_types = tuple(json.loads((data / "types.json").read_text(encoding="utf-8")))
    # Arrow's allocator keeps the decoded Parquet pages once pandas holds the columns.
    pa.default_memory_pool().release_unused()
    return deals, interactions, snapshots, event_types


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--engine", choices=sorted(ENGINES), default="closeprob")
    parser.add_argument("--threads", type=int, default=None, help="closeprob: default the cores")
    args = parser.parse_args()
    if args.threads:
        pa.set_cpu_count(args.threads)  # Arrow's Parquet decoding too
    started = time.perf_counter()
    deals, interactions, snapshots, event_types = read(args.data)
    loaded = time.perf_counter()
    if args.engine == "closeprob":
        features = benchmark_features(deals, interactions, snapshots, event_types, args.threads)
    else:
        features = reference_features(deals, interactions, snapshots, event_types)
    computed = time.perf_counter()
    features.to_parquet(args.out, index=False)
    report = {
        "engine": args.engine,
        "rows": len(features),
        "features": len(features.columns) - 2,
        "load_s": loaded - started,
        "compute_s": computed - loaded,
        "pandas": pd.__version__,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
