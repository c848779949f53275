"""The full training feature set at 1, 2, … threads against the tuned DuckDB query, interleaved.

    .venv/bin/python bench/generate.py --deals 500000 --interactions 10000000 --out DIR
    .venv/bin/python bench/feature_threads.py --data DIR --threads 1,2 --repeats 3 \
        --json bench/results/feature_threads.json
    .venv/bin/python bench/feature_threads.py --data DIR --repeats 0 --profile

Four engines on the same snapshot rows (`snapshots.parquet`: every deal open at each of 26
weekly dates), each run in a fresh child process per measurement, reading included:

- `closeprob (full)`: `build_features` with the training feature set of the default config
  (every type of `types.json` counted, windows 7/30/90, owner and account track records, the
  attributes the bench's config declares, the market and stage-history families), from the
  pipeline's reader (`pipeline.io.read_table`: every column of both files, the interactions'
  labels — type, channel, direction — as dictionaries, as `load_dataset` reads them; its
  validation is not run);
- `closeprob (full; read + validate)`: the same from `load_dataset` (read, validated, checked
  for plausibility, as every job reads its data);
- `closeprob (full; plain strings)`: the same from `pd.read_parquet` of the columns it needs,
  strings as pandas' default string dtype (how the pipeline read them before dictionaries);
- `closeprob (benchmark set)`: the benchmark features DuckDB also computes
  (`bench/engines/closeprob_features.py`: `bench/benchmark.py` on the same `Timeline` engine,
  strings as dictionaries);
- `duckdb (tuned)`: `bench/engines/duckdb_features.py --variant tuned`, those features in
  one SQL query that reads the Parquet files itself.

So the like-for-like rows are the two benchmark-set engines (34 features with the generator's
10 types); the full rows (75) show what the whole training set costs against DuckDB's query of
the 34. Rounds are interleaved (for each repeat: each thread count, each engine),
so the machine's load falls on every engine alike; figures are medians over repeats, and
`× 1 thread` is each engine's median at 1 thread over its median at that count. Peak RSS is
the child's `ru_maxrss` from `os.wait4` (this orchestrator imports no data library, so a child
does not inherit a large high-water mark). Load averages before and after are recorded.

`--profile` runs the full set once more, at 1 thread in a child under cProfile (not timed
with the others), and prints the share of wall time
inside the parts that split their work over threads (`PARALLEL`) against the rest (serial):
the serial share `s` bounds the speed-up on n cores to 1 / (s + (1 − s) / n) (Amdahl).
Figures are printed and written, never asserted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

from run import ATTRIBUTES, checked, machine, run_child  # bench/ is first on sys.path

ROOT = Path(__file__).resolve().parent.parent
ENGINES = (
    "closeprob (full)",
    "closeprob (full; read + validate)",
    "closeprob (full; plain strings)",
    "closeprob (benchmark set)",
    "duckdb (tuned)",
)
# How each full engine reads its inputs (`read_inputs`).
STRINGS = {
    "closeprob (full)": "pipeline",
    "closeprob (full; read + validate)": "validated",
    "closeprob (full; plain strings)": "plain",
}
# Functions whose own work is split over `threads` threads (by deal shard, by row range or by
# chunk of events); everything else in `build_features` runs on one thread.
PARALLEL = (
    "map_shards",
    "sort_order",
    "parallel_map",
)


def command(engine: str, data: Path, threads: int, out: Path) -> list[str]:
    """How one engine is run at `threads` threads."""
    if engine.startswith("closeprob (full"):
        strings = STRINGS[engine]
        child = ["--child", "--strings", strings, "--threads", str(threads)]
        return [sys.executable, __file__, *child, "--data", str(data)]
    if engine == "closeprob (benchmark set)":
        script = ["bench/engines/closeprob_features.py", "--engine", "closeprob"]
    else:
        script = ["bench/engines/duckdb_features.py", "--variant", "tuned"]
    return [
        sys.executable,
        *script,
        "--data",
        str(data),
        "--out",
        str(out),
        "--threads",
        str(threads),
    ]


def read_inputs(
    data: Path, strings: str = "pipeline"
) -> tuple[object, object, object, tuple[str, ...]]:
    """Deals, interactions and snapshot rows. `strings`: 'pipeline' (the pipeline's reader,
    labels as dictionaries), 'validated' (`load_dataset`: read and validated) or 'plain'
    (`pd.read_parquet` of the columns the features read, pandas' string dtype)."""
    import pandas as pd
    import pyarrow as pa

    attributes = [a.strip() for a in ATTRIBUTES.strip("[]").split(",")]
    if strings == "validated":
        from closeprob.pipeline.config import DataConfig
        from closeprob.pipeline.dataset import load_dataset

        config = DataConfig(
            deals=data / "deals.parquet",
            interactions=data / "interactions.parquet",
            truth=None,
            attributes=attributes,
        )
        dataset = load_dataset(config)
        deals, interactions = dataset.deals, dataset.interactions
    elif strings == "pipeline":
        from closeprob.pipeline.dictionary_text import dictionary_headers
        from closeprob.pipeline.io import read_table

        deals = read_table(data / "deals.parquet")
        interactions = read_table(data / "interactions.parquet", dictionary_headers({}))
    else:
        deal_columns = ["deal_id", "created_at", "closed_at", "outcome", "amount"]
        deal_columns += ["owner_id", "account_id", *attributes]
        deals = pd.read_parquet(data / "deals.parquet", columns=deal_columns)
        interactions = pd.read_parquet(
            data / "interactions.parquet",
            columns=["deal_id", "occurred_at", "type", "channel", "direction", "value"],
        )
    snapshots = pd.read_parquet(data / "snapshots.parquet", columns=["deal_id", "as_of"])
    # Arrow's allocator keeps the decoded Parquet pages once pandas holds the columns.
    pa.default_memory_pool().release_unused()
    event_types = tuple(json.loads((data / "types.json").read_text(encoding="utf-8")))
    return deals, interactions, snapshots, event_types


def full_spec(event_types: tuple[str, ...]) -> object:
    """The training feature set of the default config, with every type counted."""
    from closeprob.features.spec import FeatureSpec
    from closeprob.pipeline.config import FeatureConfig

    defaults = FeatureConfig()
    attributes = tuple(a.strip() for a in ATTRIBUTES.strip("[]").split(","))
    return FeatureSpec(
        event_types=event_types,
        windows_days=defaults.windows_days,
        attributes=attributes,
        history_keys=defaults.history_keys,
        stage_event_type=defaults.stage_event_type,
        prior_strength=defaults.prior_strength,
        market_window_days=defaults.market_window_days,
        stage_history=defaults.stage_history,
    )


def child(data: Path, threads: int, strings: str) -> None:
    """Read, build the full set, print one JSON line (the output is not written). Modules are
    imported before the clock starts, the validating reader's too (no engine counts imports);
    closeprob first, as the `closeprob` command imports it (it chooses the allocators)."""
    importlib.import_module("closeprob")  # before numpy and Arrow, as the command does
    import pyarrow as pa

    from closeprob.features.build import build_features

    importlib.import_module("closeprob.pipeline.dataset")  # the readers' modules, unclocked
    pa.set_cpu_count(threads)  # Arrow's Parquet decoding too, as DuckDB's `threads` covers its
    started, cpu_started = time.perf_counter(), time.process_time()
    deals, interactions, snapshots, event_types = read_inputs(data, strings)
    loaded, cpu_loaded = time.perf_counter(), time.process_time()
    features = build_features(deals, interactions, snapshots, full_spec(event_types), threads)
    computed, cpu_computed = time.perf_counter(), time.process_time()
    report = {
        "rows": len(features),
        "features": len(features.columns) - 2,
        "load_s": loaded - started,
        "compute_s": computed - loaded,
        # CPU seconds of every thread of the process (user + system), reading + computing.
        "cpu_s": cpu_computed - cpu_started,
        "load_cpu_s": cpu_loaded - cpu_started,
    }
    print(json.dumps(report))


def measure(
    data: Path, counts: list[int], repeats: int, engines: list[str]
) -> list[dict[str, object]]:
    """Every engine at every thread count, `repeats` interleaved rounds."""
    out = data / "features_bench.parquet"
    runs = []
    for round_number in range(repeats):
        for threads in counts:
            for engine in engines:
                before = os.getloadavg()[0]
                child_run = checked(run_child(command(engine, data, threads, out)), engine)
                report = json.loads(child_run.stdout.strip().splitlines()[-1])
                runs.append(
                    {
                        "round": round_number,
                        "engine": engine,
                        "threads": threads,
                        "seconds": child_run.seconds,
                        "load_s": report.get("load_s"),
                        "compute_s": report["compute_s"],
                        "cpu_s": report.get("cpu_s"),
                        "process_cpu_s": child_run.cpu_s,
                        "features": report.get("features"),
                        "rows": report["rows"],
                        "peak_rss_mib": child_run.peak_rss_mib,
                        "load_before": before,
                    }
                )
                print(
                    f"  round {round_number} {engine} threads={threads}: "
                    f"{child_run.seconds:.2f} s wall, {child_run.peak_rss_mib:,.0f} MiB"
                    + f", {child_run.cpu_s:.2f} process CPU s",
                    flush=True,
                )
    out.unlink(missing_ok=True)
    return runs


def summary(runs: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per engine and thread count: medians of the process's wall seconds and of reading plus
    computing (DuckDB reads inside its query), each against the engine's own 1-thread median."""
    rows = []
    for engine in ENGINES:
        mine = [r for r in runs if r["engine"] == engine]
        counts = sorted({int(r["threads"]) for r in mine})

        def median(threads: int, field: str, runs_of: list[dict[str, object]] = mine) -> float:
            return statistics.median(work(r, field) for r in runs_of if r["threads"] == threads)

        for t in counts:
            at = [r for r in mine if r["threads"] == t]
            rows.append(
                {
                    "engine": engine,
                    "threads": t,
                    "runs": len(at),
                    "features": at[0]["features"],
                    "rows": at[0]["rows"],
                    "wall_s": median(t, "wall"),
                    "work_s": median(t, "work"),
                    "speedup": median(min(counts), "work") / median(t, "work"),
                    "cpu_s": statistics.median(float(r.get("cpu_s") or "nan") for r in at),
                    "process_cpu_s": statistics.median(float(r["process_cpu_s"]) for r in at),
                    "peak_rss_mib": max(float(r["peak_rss_mib"]) for r in at),
                    "load_before": statistics.median(float(r["load_before"]) for r in at),
                }
            )
    return rows


def work(run: dict[str, object], field: str) -> float:
    """'wall': process start to exit; 'work': reading + computing (not imports, not writing)."""
    if field == "wall":
        return float(run["seconds"])
    return float(run["compute_s"]) + float(run["load_s"] or 0.0)


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| engine | features | threads | runs | read + compute s | × its 1 thread "
        "| read + compute CPU s | process wall s | process CPU s | peak RSS MiB "
        "| load (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['features']} | {r['threads']} | {r['runs']} "
            f"| {r['work_s']:.2f} | {r['speedup']:.2f} | {r['cpu_s']:.2f} | {r['wall_s']:.2f} "
            f"| {r['process_cpu_s']:.2f} "
            f"| {r['peak_rss_mib']:,.0f} | {r['load_before']:.1f} |"
        )
    return "\n".join(lines)


def profile(data: Path) -> dict[str, object]:
    """The full set once at 1 thread under cProfile: wall seconds inside `PARALLEL` parts."""
    import cProfile
    import pstats

    importlib.import_module("closeprob")  # before numpy and Arrow, as the command does
    from closeprob.features.build import build_features

    deals, interactions, snapshots, event_types = read_inputs(data)
    spec = full_spec(event_types)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    build_features(deals, interactions, snapshots, spec, 1)
    profiler.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    parallel = 0.0
    for (_, _, name), (_, _, _, cumulative, callers) in stats.stats.items():  # type: ignore[attr-defined]
        # Outermost calls only: a parallel part called from another is not counted twice.
        if name in PARALLEL and not any(c[2] in PARALLEL for c in callers):
            parallel += cumulative
    stats.sort_stats("cumulative").print_stats(25)
    serial = max(0.0, total - parallel) / total
    sys.stdout.flush()
    return {
        "build_features_s": total,
        "parallel_s": parallel,
        "serial_share": serial,
        "amdahl": {n: 1.0 / (serial + (1.0 - serial) / n) for n in (2, 4, 8, 16)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a bench/generate.py folder")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (0: none)")
    parser.add_argument("--json", type=Path, default=None, help="write the runs and medians here")
    parser.add_argument(
        "--profile", action="store_true", help="also profile the full set at 1 thread (a child)"
    )
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated, from: " + ", ".join(ENGINES)
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--strings", default="pipeline", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.data, int(args.threads), args.strings)
        return
    if args.child_profile:
        print(json.dumps(profile(args.data)))
        return
    counts = [int(t) for t in args.threads.split(",") if t.strip()]
    load_before = os.getloadavg()[0]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise SystemExit(f"--engines {unknown!r}: choose from {', '.join(ENGINES)}")
    runs = measure(args.data, counts, args.repeats, engines)
    rows = summary(runs)
    result: dict[str, object] = {
        "data": str(args.data),
        "command": shlex.join(["bench/feature_threads.py", *sys.argv[1:]]),
        "machine": machine(),
        "runs": runs,
        "summary": rows,
    }
    if rows:
        print(table(rows))
    if args.profile:
        command = [sys.executable, __file__, "--child-profile", "--data", str(args.data)]
        profiled = checked(run_child(command), "the profiled run")
        result["profile"] = json.loads(profiled.stdout.strip().splitlines()[-1])
        print(profiled.stdout[-6000:])
    result["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    print(f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
