"""`make bench`: closeprob at three sizes, stage by stage, and its features against other engines.

    .venv/bin/python bench/run.py --size small,medium        # what `make bench` runs
    .venv/bin/python bench/run.py --size large               # 500 k deals / 10 M interactions
    .venv/bin/python bench/run.py --render                   # RESULTS.md from saved results

For each size the built-in generator writes a CRM as Parquet (`bench/generate.py`). Then, each
in a fresh child process so that its peak memory is its own:

1. the pipeline's stages one after another (`bench/stages.py`): validate, snapshot features,
   train, calibrate, value model, score, rank; seconds and peak RSS per stage;
2. the whole `make train` and `make predict` on that data, against a fresh SQLite MLflow store;
3. the benchmark feature set (`bench/benchmark.py`) on the same 26 weekly snapshots by every
   engine: closeprob, the straightforward pandas reference, DuckDB (straightforward and tuned
   SQL) and Featuretools DFS with a cutoff-time frame (in its own virtualenv, pandas < 3).
   Every engine's output is checked equal to closeprob's; times are medians of `--repeats` runs.

Peak memory of a child is its `ru_maxrss` from `os.wait4`. This orchestrator imports no data
library and stays small, so the high-water mark a child inherits at exec is this process's
(about 20 MiB), not a data frame's. Results go to `bench/results/<size>.json`; RESULTS.md is
rendered from every saved size. Figures are printed and written, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import cast

from report import render  # bench/report.py (this script's folder is first on sys.path)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
SIZES = {
    "small": (5_000, 100_000),
    "medium": (50_000, 1_000_000),
    "large": (500_000, 10_000_000),
}
FEATURETOOLS_PYTHON = ROOT / ".venv-featuretools" / "bin" / "python"
PACKAGES = ("pandas", "numpy", "pyarrow", "lightgbm", "scikit-learn", "mlflow", "duckdb")
ATTRIBUTES = "[industry, company_size, source, region, product]"


@dataclass(frozen=True)
class Child:
    """A finished child process: exit code, wall seconds, peak RSS (MiB), stdout and stderr,
    CPU seconds (user + system, its threads and the descendants it waited for)."""

    returncode: int
    seconds: float
    peak_rss_mib: float
    stdout: str
    stderr: str
    cpu_s: float = float("nan")


def run_child(command: list[str], env: dict[str, str] | None = None) -> Child:
    """Run `command`, wait for it with `os.wait4`, and return what it used.

    Output goes to temporary files, not pipes, so a chatty child cannot block on a full pipe.
    `ru_maxrss` covers the child and the descendants it waited for (make → python).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=out, stderr=err, cwd=ROOT, env={**os.environ, **(env or {})}
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(
            returncode=process.returncode,
            seconds=seconds,
            peak_rss_mib=usage.ru_maxrss / 1024,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            cpu_s=usage.ru_utime + usage.ru_stime,
        )


def checked(child: Child, what: str) -> Child:
    if child.returncode != 0:
        raise SystemExit(
            f"{what} failed with exit code {child.returncode} (-9 or 137: killed, usually for "
            f"memory); its stderr ends with:\n{child.stderr[-3000:]}"
        )
    return child


def python() -> str:
    return sys.executable


def generate(size: str, folder: Path) -> dict[str, object]:
    deals, interactions = SIZES[size]
    command = [python(), "bench/generate.py", "--deals", str(deals)]
    command += ["--interactions", str(interactions), "--out", str(folder)]
    child = checked(run_child(command), f"generating the {size} CRM")
    facts = json.loads(child.stdout.strip().splitlines()[-1])
    return facts | {"seconds": child.seconds, "peak_rss_mib": child.peak_rss_mib}


def write_config(folder: Path) -> Path:
    """A closeprob config over the generated Parquet files; everything else the defaults."""
    config = folder / "config.yaml"
    config.write_text(
        "data:\n"
        f"  deals: {folder / 'deals.parquet'}\n"
        f"  interactions: {folder / 'interactions.parquet'}\n"
        f"  truth: {folder / 'truth.parquet'}\n"
        f"  attributes: {ATTRIBUTES}\n"
        "predict:\n"
        f"  out: {folder / 'queue.csv'}\n",
        encoding="utf-8",
    )
    return config


def stages(config: Path, folder: Path) -> dict[str, object]:
    out = folder / "stages.json"
    command = [python(), "bench/stages.py", "--config", str(config), "--out", str(out)]
    child = checked(run_child(command), "the stage-by-stage run")
    result: dict[str, object] = json.loads(out.read_text(encoding="utf-8"))
    return result | {"seconds": child.seconds, "peak_rss_mib": child.peak_rss_mib}


def make_targets(config: Path, folder: Path) -> dict[str, dict[str, float]]:
    """`make train` then `make predict` on the generated data, in a fresh MLflow store."""
    store = folder / "mlflow"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir()
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
    measured = {}
    for target in ("train", "predict"):
        command = ["make", "--no-print-directory", target, f"CONFIG={config}"]
        child = checked(run_child(command, env), f"make {target}")
        measured[target] = {"seconds": child.seconds, "peak_rss_mib": child.peak_rss_mib}
    return measured


def engine_commands(folder: Path, out: Path) -> dict[str, list[str]]:
    """How each feature engine is run; Featuretools only where its virtualenv exists."""
    data = ["--data", str(folder), "--out", str(out)]
    ours = [python(), "bench/engines/closeprob_features.py", *data]
    commands = {
        "closeprob": [*ours, "--engine", "closeprob"],
        "pandas (reference)": [*ours, "--engine", "reference"],
        "duckdb": [
            python(),
            "bench/engines/duckdb_features.py",
            *data,
            "--variant",
            "straightforward",
        ],
        "duckdb (tuned)": [
            python(),
            "bench/engines/duckdb_features.py",
            *data,
            "--variant",
            "tuned",
        ],
    }
    if FEATURETOOLS_PYTHON.is_file():
        commands["featuretools"] = [
            str(FEATURETOOLS_PYTHON),
            "bench/engines/featuretools_features.py",
            *data,
        ]
    return commands


def compare_engines(
    folder: Path, repeats: int, featuretools_max: int, interactions: int
) -> dict[str, dict[str, object]]:
    """Each engine `repeats` times (Featuretools and the reference once above 2 M interactions);
    medians of compute seconds, the largest peak RSS; each output checked against closeprob's."""
    measured: dict[str, dict[str, object]] = {}
    expected = folder / "features_closeprob.parquet"
    for name, command in engine_commands(folder, folder / "features.parquet").items():
        if name == "featuretools" and interactions > featuretools_max:
            measured[name] = {
                "skipped": f"above --featuretools-max {featuretools_max:,} interactions"
            }
            continue
        slow = name in {"featuretools", "pandas (reference)"} and interactions > 2_000_000
        runs = 1 if slow else repeats
        reports, peaks = [], []
        for _ in range(runs):
            child = checked(run_child(command), f"the {name} feature engine")
            reports.append(json.loads(child.stdout.strip().splitlines()[-1]))
            peaks.append(child.peak_rss_mib)
        if name == "closeprob":
            (folder / "features.parquet").replace(expected)
            equal = "is the baseline"
        else:
            equal = check_equal(expected, folder / "features.parquet")
        measured[name] = {
            "runs": runs,
            "compute_s": statistics.median(r["compute_s"] for r in reports),
            "load_s": statistics.median(r["load_s"] for r in reports),
            "peak_rss_mib": max(peaks),
            "equal": equal,
        }
        print(
            f"    {name}: {measured[name]['compute_s']:.2f} s, {max(peaks):,.0f} MiB, {equal}",
            flush=True,
        )
    return measured


def check_equal(expected: Path, actual: Path) -> str:
    """'equal' or what differs, computed in a child (this process imports no pandas)."""
    command = [python(), "bench/engines/compare_features.py", str(expected), str(actual)]
    child = run_child(command)
    return child.stdout.strip() or f"comparison failed: {child.stderr[-500:]}"


def machine() -> dict[str, object]:
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()
    total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    return {
        "cpus": len(os.sched_getaffinity(0)),  # usable by this process, not the host's count
        "cpu_model": model,
        "ram_gib": round(total_kib / 1024**2, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {name: installed(name) for name in PACKAGES},
        "featuretools": featuretools_version(),
        "date": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
    }


def installed(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def featuretools_version() -> str:
    if not FEATURETOOLS_PYTHON.is_file():
        return "not installed (make bench-featuretools)"
    code = "import featuretools as f, pandas as p; print(f.__version__, 'pandas', p.__version__)"
    child = run_child([str(FEATURETOOLS_PYTHON), "-c", code])
    return child.stdout.strip() or "broken virtualenv"


def bench_size(size: str, args: argparse.Namespace) -> dict[str, object]:
    folder = args.work / size
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    load_before = os.getloadavg()[0]
    print(
        f"{size}: generating {SIZES[size][0]:,} deals / {SIZES[size][1]:,} interactions", flush=True
    )
    generated = generate(size, folder)
    config = write_config(folder)
    print(f"  stages ({generated['snapshot_rows']:,} benchmark snapshot rows)", flush=True)
    staged = stages(config, folder)
    print("  make train, make predict", flush=True)
    made = make_targets(config, folder)
    print("  feature engines", flush=True)
    engines = compare_engines(
        folder, args.repeats, args.featuretools_max, cast(int, generated["interactions"])
    )
    result: dict[str, object] = {
        "size": size,
        "generated": generated,
        "stages": staged,
        "make": made,
        "engines": engines,
        "machine": machine(),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
    }
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def throughput(open_deals: str) -> None:
    """Batch scoring at `open_deals` open deals (bench/score_throughput.py), saved as JSON."""
    print(f"scoring throughput at {open_deals} open deals", flush=True)
    out = RESULTS / "throughput.json"
    command = [python(), "bench/score_throughput.py", "--sizes", open_deals, "--json", str(out)]
    checked(run_child(command), "the scoring throughput bench")


def spark(interactions: str) -> None:
    """The Spark engine against the local engine (bench/spark_engine.py), saved as JSON."""
    print(f"Spark engine at {interactions} interactions", flush=True)
    command = [python(), "bench/spark_engine.py", "--interactions", interactions]
    command += ["--json", str(RESULTS / "spark.json")]
    checked(run_child(command), "the Spark engine bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", default="small,medium", help="comma-separated: small,medium,large"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per feature engine (median)")
    parser.add_argument(
        "--featuretools-max",
        type=int,
        default=2_000_000,
        help="skip Featuretools above this many interactions (it takes about 15 min at 10 M)",
    )
    parser.add_argument(
        "--throughput",
        default="100000",
        help="open deals for the scoring-throughput bench, comma-separated ('' to skip)",
    )
    parser.add_argument(
        "--spark",
        default="1000000",
        help="interactions for the Spark-engine bench (needs Java and pyspark; '' to skip)",
    )
    parser.add_argument("--work", type=Path, default=BENCH / ".work", help="scratch folder")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--render", action="store_true", help="only rewrite RESULTS.md")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if not args.render:
        sizes = [s.strip() for s in args.size.split(",") if s.strip()]
        for size in sizes:
            if size not in SIZES:
                raise SystemExit(f"--size {size!r}: choose from {', '.join(SIZES)}")
            result = bench_size(size, args)
            (RESULTS / f"{size}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        if args.throughput:
            throughput(args.throughput)
        if args.spark:
            spark(args.spark)
    (BENCH / "RESULTS.md").write_text(render(RESULTS), encoding="utf-8")
    print((BENCH / "RESULTS.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
