"""Batch-scoring throughput: open deals per second at 100k and 1M open deals, and peak memory.

    .venv/bin/python bench/score_throughput.py
    .venv/bin/python bench/score_throughput.py --sizes 20000 --days 45 --interactions-per-deal 8
    .venv/bin/python bench/score_throughput.py --sizes 100000 --profile 25

A model is trained once, in this process, on the default built-in CRM (no MLflow). For each size
a synthetic CRM over a short span (`--days`) is generated so that most deals are still open at
its end; a pilot CRM of PILOT_DEALS deals measures the open share and the interactions per deal,
and the deal count is scaled so that the open deals come close to the size asked for. Deals,
interactions and the model go to a temporary folder (Parquet, joblib).

The measured step runs in a fresh child interpreter (this script with `--child`): it loads the
model, reads and validates the two tables (`load_dataset`), then calls `build_queue` at the end
of the data (features, scoring, ranking, reason codes for the deals people read: the default
`ranking.reasons_for: read`) and writes the queue as Parquet (the batch job's atomic write);
then `build_queue` again with `ranking.reasons: 0` (no reason codes, so no TreeSHAP) and with
`ranking.reasons_for: all` (exact reasons for every deal). The child's peak RSS (VmHWM) therefore
covers imports, reading, validation and scoring, and nothing of the generation or the training.
Figures are printed, never asserted. `--profile N` runs `build_queue` under cProfile in the child
and prints its top N entries by cumulative time; the table's times then include the profiler's
overhead.
"""

from __future__ import annotations

# isort: off
import closeprob  # noqa: F401  first, as the `closeprob` command: it chooses the allocators

# isort: on
import argparse
import cProfile
import datetime as dt
import gc
import json
import math
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import joblib
import pandas as pd

from closeprob.pipeline.config import Config, DataConfig, RankingConfig
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.io import write_table
from closeprob.pipeline.registry import LoadedModel, check_model_matches
from closeprob.pipeline.scoring import build_queue, default_as_of, reason_rows
from closeprob.pipeline.synthetic import generate_crm
from closeprob.pipeline.training import train_close_model

ATTRIBUTES = ("industry", "company_size", "source", "region", "product")
START = "2023-01-01"
PILOT_DEALS = 20_000
CHUNK_ROWS = 100_000
MODEL_FILE, DEALS_FILE, INTERACTIONS_FILE = "model.joblib", "deals.parquet", "interactions.parquet"
RESULT_FILE = "result.json"
PACKAGES = ("pandas", "lightgbm", "numpy", "scikit-learn", "pyarrow")


@dataclass(frozen=True)
class CrmShape:
    """What the generator gives for a span: the share of deals open at the end, and the
    interactions it draws per deal when asked for one."""

    open_share: float
    interactions_per_requested: float


@dataclass(frozen=True)
class GeneratedCrm:
    """One benchmark CRM as written to disk: all deals, the open ones, all interactions."""

    deals: int
    open_deals: int
    interactions: int
    generate_s: float


@dataclass(frozen=True)
class ChildResult:
    """What the child measured; times in seconds, memory in MiB (RSS). `rss_after_imports_mib`
    is taken once the packages and the model are loaded, before any data is read."""

    deals: int
    open_deals_scored: int
    interactions: int
    read_validate_s: float
    build_queue_s: float
    write_s: float
    # CPU seconds of the process, all threads (LightGBM's and Arrow's included): steadier than
    # wall seconds on a shared machine, but not a substitute for them.
    read_validate_cpu_s: float
    build_queue_cpu_s: float
    write_cpu_s: float
    build_queue_no_reasons_s: float
    build_queue_all_reasons_s: float
    deals_with_reasons: int
    rss_after_imports_mib: float
    peak_after_read_mib: float
    peak_mib: float


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Batch-scoring throughput (see the docstring).")
    parser.add_argument("--sizes", default="100000,1000000", help="open deals, comma-separated")
    parser.add_argument("--days", type=int, default=45, help="span of each generated CRM")
    parser.add_argument("--interactions-per-deal", type=float, default=8.0)
    parser.add_argument("--profile", type=int, default=0, help="top N cProfile entries (0: off)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--prepare",
        type=Path,
        default=None,
        help="write the model and the CRM of the first size to this folder and stop (for "
        "bench/score_before_after.sh)",
    )
    return parser.parse_args(argv)


def train_bench_model() -> LoadedModel:
    """The default model on the default built-in CRM, unwrapped as the batch job would load it."""
    config = Config(data=DataConfig(attributes=ATTRIBUTES))
    g = config.generate
    crm = generate_crm(g.n_deals, g.n_interactions, g.start, g.days, config.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train_close_model(Dataset(crm.deals, crm.interactions, crm.truth), config)
    return LoadedModel(
        close=result.model, value=result.value_model, uri="in-memory", version="bench"
    )


def measure_shape(days: int, per_deal: float, seed: int) -> CrmShape:
    """Open share and interactions drawn per interaction asked for, on a pilot CRM."""
    asked = round(per_deal * PILOT_DEALS)
    crm = generate_crm(PILOT_DEALS, asked, START, days, seed)
    return CrmShape(
        open_share=float(crm.deals["closed_at"].isna().mean()),
        interactions_per_requested=len(crm.interactions) / asked,
    )


def write_crm(
    open_deals: int, per_deal: float, days: int, shape: CrmShape, seed: int, folder: Path
) -> GeneratedCrm:
    """Deals scaled so that about `open_deals` are open at the end, about `per_deal`
    interactions per deal (open or closed); both tables written as Parquet to `folder`."""
    n_deals = math.ceil(open_deals / shape.open_share)
    n_interactions = round(per_deal * n_deals / shape.interactions_per_requested)
    started = time.perf_counter()
    crm = generate_crm(n_deals, n_interactions, START, days, seed)
    crm.deals.to_parquet(folder / DEALS_FILE, index=False)
    crm.interactions.to_parquet(folder / INTERACTIONS_FILE, index=False)
    return GeneratedCrm(
        deals=len(crm.deals),
        open_deals=int(crm.deals["closed_at"].isna().sum()),
        interactions=len(crm.interactions),
        generate_s=time.perf_counter() - started,
    )


def run_child(folder: Path, profile: int) -> ChildResult:
    """Score the CRM in `folder` in a fresh interpreter and read back what it measured."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(folder)]
    completed = subprocess.run([*command, "--profile", str(profile)], check=False)
    if completed.returncode != 0:
        raise SystemExit(
            f"the scoring child for {folder} exited with code {completed.returncode} "
            "(-9 or 137 usually means it was killed for memory); no figures for this size"
        )
    return ChildResult(**json.loads((folder / RESULT_FILE).read_text(encoding="utf-8")))


def status_mib(field: str) -> float:
    """A memory field of /proc/self/status (Linux), in MiB: VmRSS (now) or VmHWM (peak)."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, from VmHWM.

    Not `ru_maxrss`: execve carries the parent's high-water mark into it (subprocess execs from
    a vfork of the parent), so a child of a parent that peaked at 4.6 GiB while generating
    reports at least 4.6 GiB. VmHWM belongs to the child's own address space.
    """
    return status_mib("VmHWM")


def read_scoring_data(folder: Path, loaded: LoadedModel) -> Dataset:
    """Deals and interactions from `folder`, validated as the batch job does."""
    data = DataConfig(
        deals=folder / DEALS_FILE,
        interactions=folder / INTERACTIONS_FILE,
        truth=None,  # not the default's data/truth.csv: scoring needs no oracle
        attributes=ATTRIBUTES,
    )
    dataset = load_dataset(data)
    check_model_matches(loaded.close, dataset.deals, str(data.deals))
    return dataset


def queue_open_deals(
    dataset: Dataset, loaded: LoadedModel, profiler: cProfile.Profile | None, ranking: RankingConfig
) -> pd.DataFrame:
    """The priority queue at the end of the data, under `profiler` when one is given."""
    if profiler is not None:
        profiler.enable()
    queue = build_queue(
        dataset,
        loaded,
        as_of=default_as_of(dataset),
        ranking=ranking,
        chunk_rows=CHUNK_ROWS,
        previous=None,
    )
    if profiler is not None:
        profiler.disable()
    return queue


def score_in_child(folder: Path, profile: int) -> None:
    """The measured step: read + validate, then build_queue; writes RESULT_FILE to `folder`."""
    loaded: LoadedModel = joblib.load(folder / MODEL_FILE)
    rss_after_imports = status_mib("VmRSS")
    started, cpu = time.perf_counter(), time.process_time()
    dataset = read_scoring_data(folder, loaded)
    read_validate_s, read_validate_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    peak_after_read = peak_rss_mib()
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    queue = queue_open_deals(dataset, loaded, profiler, RankingConfig())
    build_queue_s, build_queue_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    write_table(queue, folder / "queue.parquet")
    write_s, write_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    timings = {}
    settings = {"none": RankingConfig(reasons=0), "all": RankingConfig(reasons_for="all")}
    for name, ranking in settings.items():
        started = time.perf_counter()
        queue_open_deals(dataset, loaded, None, ranking)
        timings[name] = time.perf_counter() - started
    result = ChildResult(
        deals=len(dataset.deals),
        open_deals_scored=len(queue),
        interactions=len(dataset.interactions),
        read_validate_s=read_validate_s,
        build_queue_s=build_queue_s,
        write_s=write_s,
        read_validate_cpu_s=read_validate_cpu_s,
        build_queue_cpu_s=build_queue_cpu_s,
        write_cpu_s=write_cpu_s,
        build_queue_no_reasons_s=timings["none"],
        build_queue_all_reasons_s=timings["all"],
        deals_with_reasons=int(reason_rows(queue, RankingConfig()).sum()),
        rss_after_imports_mib=rss_after_imports,
        peak_after_read_mib=peak_after_read,
        peak_mib=peak_rss_mib(),
    )
    (folder / RESULT_FILE).write_text(json.dumps(asdict(result)), encoding="utf-8")
    if profiler is not None:
        print(f"\ncProfile of build_queue ({len(queue):,} open deals), top {profile} cumulative:")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(profile)


def prepare_folder(folder: Path, open_deals: int, args: argparse.Namespace, seed: int) -> None:
    """The model and the CRM that `measure_size` would score, kept in `folder`: the same data
    for a child run from another checkout (`bench/score_before_after.sh`)."""
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(train_bench_model(), folder / MODEL_FILE)
    shape = measure_shape(args.days, args.interactions_per_deal, seed)
    generated = write_crm(open_deals, args.interactions_per_deal, args.days, shape, seed, folder)
    print(f"{folder}: {generated}")


def measure_size(
    open_deals: int, args: argparse.Namespace, shape: CrmShape, loaded: LoadedModel, seed: int
) -> tuple[GeneratedCrm, ChildResult]:
    """Generate, write and score one size in a temporary folder that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="score_throughput_") as name:
        folder = Path(name)
        joblib.dump(loaded, folder / MODEL_FILE)
        generated = write_crm(
            open_deals, args.interactions_per_deal, args.days, shape, seed, folder
        )
        # The generator's frames are gone before the child starts: the machine's memory is shared.
        gc.collect()
        print(
            f"  {open_deals:,}: generated {generated.deals:,} deals ({generated.open_deals:,} "
            f"open) and {generated.interactions:,} interactions in {generated.generate_s:.1f} s; "
            "scoring in a fresh child process",
            flush=True,
        )
        return generated, run_child(folder, args.profile)


def machine_lines(load_before: float) -> list[str]:
    """CPU count and model, total RAM, load, package versions, date (UTC).

    The load average shows whether other work shared the CPUs: LightGBM's OpenMP threads slow
    down sharply when the cores are oversubscribed.
    """
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()
    total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    versions = ", ".join(f"{name} {version(name)}" for name in PACKAGES)
    return [
        f"machine: {len(os.sched_getaffinity(0))} usable CPUs ({model}), "
        f"{total_kib / 1024**2:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after",
        f"versions: {versions}",
        f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
    ]


def format_table(rows: list[tuple[GeneratedCrm, ChildResult]]) -> str:
    """One markdown row per size: counts, phase seconds, open deals per second, memory.

    'read to write' is the whole batch: reading and validating both tables, build_queue
    (features, p_close, values, rank, tiers, reasons for the deals people read) and writing the
    queue; 'scoring' leaves out the reading and validating; the other two settings are
    build_queue alone."""
    lines = [
        "| open deals scored | interactions | read+validate s | build_queue s (deals with reasons) "
        "| write s | open deals/s read to write | open deals/s scoring (build_queue + write) "
        "| reasons 0: s, open deals/s | reasons for all: s, open deals/s "
        "| CPU s: read+validate, build_queue+write | RSS after imports+model MiB | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, r in rows:
        n = r.open_deals_scored
        lines.append(
            f"| {n:,} | {r.interactions:,} | {r.read_validate_s:.2f} "
            f"| {r.build_queue_s:.2f} ({r.deals_with_reasons:,}) | {r.write_s:.2f} "
            f"| {n / (r.read_validate_s + r.build_queue_s + r.write_s):,.0f} "
            f"| {n / (r.build_queue_s + r.write_s):,.0f} "
            f"| {r.build_queue_no_reasons_s:.2f}, {n / r.build_queue_no_reasons_s:,.0f} "
            f"| {r.build_queue_all_reasons_s:.2f}, {n / r.build_queue_all_reasons_s:,.0f} "
            f"| {r.read_validate_cpu_s:.2f}, {r.build_queue_cpu_s + r.write_cpu_s:.2f} "
            f"| {r.rss_after_imports_mib:,.0f} | {r.peak_mib:,.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.child is not None:
        score_in_child(args.child, args.profile)
        return
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    seed = Config().seed
    if args.prepare is not None:
        prepare_folder(args.prepare, sizes[0], args, seed)
        return
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    loaded = train_bench_model()
    print(f"trained the default model in {time.perf_counter() - started:.1f} s", flush=True)
    shape = measure_shape(args.days, args.interactions_per_deal, seed)
    print(
        f"CRMs from {START} over {args.days} days (seed {seed}): {shape.open_share:.0%} of deals "
        f"open at the end; about {args.interactions_per_deal:g} interactions per deal, open or "
        "closed (kept low so that 1M open deals fit in memory)",
        flush=True,
    )
    rows = [measure_size(size, args, shape, loaded, seed) for size in sizes]
    print()
    print(
        f"build_queue at the end of the data, chunk_rows={CHUNK_ROWS:,}, default ranking, "
        f"no previous queue{'; times include cProfile overhead' if args.profile else ''}"
    )
    print(format_table(rows))
    print()
    print("\n".join(machine_lines(load_before)))
    if args.json is not None:
        machine = machine_lines(load_before)
        saved = [
            asdict(generated) | asdict(child) | {"machine": machine} for generated, child in rows
        ]
        args.json.write_text(json.dumps(saved, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
