"""Write one benchmark CRM: the built-in generator's tables as Parquet, and the snapshots.

    .venv/bin/python bench/generate.py --deals 50000 --interactions 1000000 --out DIR

Writes `deals.parquet`, `interactions.parquet`, `truth.parquet` (the generator's hidden truth,
for the oracle), `snapshots.parquet` (one row per deal open at each of the last `--weeks`
weekly snapshot dates: the rows every feature engine computes) and `types.json` (the event
types the engines count). Prints one JSON line with the row counts and the seconds spent
generating and writing. `bench/run.py` calls it in a child process to measure its memory.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from closeprob.features.point_in_time import data_end
from closeprob.features.snapshots import open_deal_snapshots, snapshot_dates
from closeprob.pipeline.synthetic import generate_crm

START, DAYS = "2023-01-01", 730


def benchmark_snapshots(
    deals: pd.DataFrame, interactions: pd.DataFrame, weeks: int
) -> pd.DataFrame:
    """Deals open at each of the last `weeks` weekly dates before the end of the data."""
    end = data_end(deals, interactions)
    dates = snapshot_dates(end - pd.Timedelta(weeks=weeks), end, 7)[-weeks:]
    return open_deal_snapshots(deals, dates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, required=True)
    parser.add_argument("--interactions", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--weeks", type=int, default=26)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    crm = generate_crm(args.deals, args.interactions, START, DAYS, args.seed)
    generated = time.perf_counter()
    crm.deals.to_parquet(args.out / "deals.parquet", index=False)
    crm.interactions.to_parquet(args.out / "interactions.parquet", index=False)
    crm.truth.to_parquet(args.out / "truth.parquet", index=False)
    written = time.perf_counter()
    snapshots = benchmark_snapshots(crm.deals, crm.interactions, args.weeks)
    snapshots.to_parquet(args.out / "snapshots.parquet", index=False)
    types = sorted(crm.interactions["type"].dropna().unique().tolist())
    (args.out / "types.json").write_text(json.dumps(types), encoding="utf-8")
    facts = {
        "deals": len(crm.deals),
        "interactions": len(crm.interactions),
        "snapshot_rows": len(snapshots),
        "snapshot_dates": int(snapshots["as_of"].nunique()),
        "generate_s": generated - started,
        "write_s": written - generated,
    }
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
