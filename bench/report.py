"""Render bench/RESULTS.md from the saved results of `bench/run.py` (bench/results/*.json).

Formatting only: every figure comes from a saved run, and each target's verdict is computed
from those figures here, never written by hand; the one hand-kept part, bench/RESULTS.hand.md
(before/after runs no saved result holds), is copied in as it is.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

ORDER = ("small", "medium", "large")
ENGINE_ORDER = ("closeprob", "pandas (reference)", "duckdb", "duckdb (tuned)", "featuretools")
TRAIN_LIMIT_S, TRAIN_LIMIT_MIB = 15 * 60, 8 * 1024
SCORING_TARGET = 100_000


def load(results: Path) -> list[dict]:
    saved = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in results.glob("*.json")}
    return [saved[size] for size in ORDER if size in saved]


def render(results: Path) -> str:
    runs = load(results)
    lines = [
        "# closeprob benchmarks",
        "",
        "Written by `make bench` (`bench/run.py`; `make bench SIZE=large` for 500 k deals / 10 M",
        "interactions). Each size is a run of its own: see its machine line. Times are wall",
        "seconds; memory is peak resident set size (RSS) in MiB, of a fresh process per",
        "measurement. Nothing here is asserted by a test.",
        "",
    ]
    if not runs:
        return "\n".join([*lines, "No saved results: run `make bench`."]) + "\n"
    target_rows, sections = hand_written(results.parent / HAND_WRITTEN)
    goals = targets(runs, results)
    lines += [*machine_lines(runs), *goals[:-1], *target_rows, "", *engines(runs), *scaling(runs)]
    lines += feature_thread_lines(results)
    lines += make_lines(runs) + stage_lines(runs) + sections
    lines += scoring(runs, results) + spark_lines(results)
    return "\n".join(lines) + "\n"


# Measurements no saved result holds (before/after runs, figures from another script), kept by
# hand: its table rows before the first heading join the targets table, its sections follow
# the stages. Rendering copies it, so `--render` never drops them.
HAND_WRITTEN = "RESULTS.hand.md"


def hand_written(path: Path) -> tuple[list[str], list[str]]:
    """(target rows, sections) of the hand-kept file; none when there is no such file."""
    if not path.is_file():
        return [], []
    text = path.read_text(encoding="utf-8").splitlines()
    first = next((i for i, line in enumerate(text) if line.startswith("## ")), len(text))
    rows = [line for line in text[:first] if line.startswith("| ")]
    sections = text[first:]
    while sections and not sections[-1].strip():
        sections.pop()
    return rows, [*sections, ""] if sections else []


def sized(run: dict) -> str:
    g = run["generated"]
    return f"{run['size']} ({g['deals']:,} deals / {g['interactions']:,} interactions)"


def machine_lines(runs: list[dict]) -> list[str]:
    lines = ["## Machines", ""]
    for run in runs:
        m = run["machine"]
        versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        load = run["load_average"]
        lines.append(
            f"- **{sized(run)}**: {m['date']}; {m['cpus']} CPUs ({m['cpu_model']}), "
            f"{m['ram_gib']} GiB RAM, {m['os']}, Python {m['python']}; {versions}; "
            f"featuretools {m['featuretools']}; load average {load['before']:.2f} before, "
            f"{load['after']:.2f} after"
        )
    return [*lines, ""]


def engine_total(engine: dict, name: str) -> float:
    """Reading plus computing: DuckDB reads the Parquet inside its query, the others before."""
    return float(engine["compute_s"]) + (
        0.0 if name.startswith("duckdb") else float(engine["load_s"])
    )


def targets(runs: list[dict], results: Path) -> list[str]:
    by_size = {run["size"]: run for run in runs}
    lines = ["## Targets (issue 7)", "", "| target | measured | met |", "|---|---|---|"]
    medium = by_size.get("medium")
    if medium and "compute_s" in medium["engines"].get("featuretools", {}):
        ours = medium["engines"]["closeprob"]
        ft = medium["engines"]["featuretools"]
        ratio = engine_total(ft, "featuretools") / engine_total(ours, "closeprob")
        compute_ratio = ft["compute_s"] / ours["compute_s"]
        lines.append(
            f"| features ≥ 100× faster than Featuretools at 1 M interactions | {ratio:,.0f}× "
            f"read + compute ({compute_ratio:,.0f}× compute only) | {yes(ratio >= 100)} |"
        )
    else:
        lines.append("| features ≥ 100× faster than Featuretools at 1 M | not measured | – |")
    large = by_size.get("large")
    if large:
        ours, duck = large["engines"]["closeprob"], large["engines"]["duckdb (tuned)"]
        faster = engine_total(ours, "closeprob") < engine_total(duck, "duckdb")
        leaner = ours["peak_rss_mib"] < duck["peak_rss_mib"]
        lines.append(
            "| features faster than tuned DuckDB at 10 M, in less memory | "
            f"{engine_total(ours, 'closeprob'):.1f} s vs {engine_total(duck, 'duckdb'):.1f} s "
            f"read + compute; {ours['peak_rss_mib']:,.0f} vs {duck['peak_rss_mib']:,.0f} MiB | "
            f"{yes(faster and leaner)} |"
        )
        train = large["make"]["train"]
        lines.append(
            f"| `make train` at 10 M / 500 k: < 15 min and < 8 GiB | {train['seconds'] / 60:.1f} "
            f"min, {train['peak_rss_mib'] / 1024:.2f} GiB | "
            f"{yes(train['seconds'] < TRAIN_LIMIT_S and train['peak_rss_mib'] < TRAIN_LIMIT_MIB)} |"
        )
    else:
        lines.append("| 10 M interactions targets | not measured (`make bench SIZE=large`) | – |")
    for row in load_throughput(results):
        rate = row["open_deals_scored"] / (row["build_queue_s"] + row.get("write_s", 0.0))
        bare = row["open_deals_scored"] / row["build_queue_no_reasons_s"]
        lines.append(
            f"| scoring ≥ 100 k open deals/s end to end, default `reasons_for` "
            f"({row['open_deals_scored']:,} open deals) | {rate:,.0f}/s with reason codes, "
            f"{bare:,.0f}/s without | {yes(rate >= SCORING_TARGET)} |"
        )
    return [*lines, ""]


def load_throughput(results: Path) -> list[dict]:
    path = results / "throughput.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def reasons_cell(stage: dict | None) -> str:
    """Seconds of the reasons stage and the deals it explained; '–' for older results."""
    return "–" if stage is None else f"{stage['seconds']:.2f} ({stage['rows']:,})"


def scoring_rate(run: dict) -> float:
    stages = {s["stage"]: s for s in run["stages"]["stages"]}
    # Results written before reasons were their own stage (`ranking.reasons_for`) have none.
    reasons = stages.get("reasons", {"seconds": 0.0})
    seconds = stages["score"]["seconds"] + stages["rank"]["seconds"] + reasons["seconds"]
    return stages["rank"]["rows"] / seconds


def engines(runs: list[dict]) -> list[str]:
    lines = [
        "## Snapshot features: the same feature set, three engines",
        "",
        "Counts per type in 7/30/90 days, days since the last touch and the last inbound one,",
        "deal age, distinct types in 30 days, on every deal open at each of 26 weekly snapshot",
        "dates. Every output is checked equal to closeprob's (counts exactly, days to 1e-9).",
        "'compute' excludes reading the Parquet files except for DuckDB, which reads them inside",
        "its query; 'read + compute' is the fair comparison. Medians of the runs shown.",
        "",
        "| size | snapshot rows | engine | runs | read s | compute s | read + compute s "
        "| × closeprob | peak RSS MiB | equal |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        measured = run["engines"]
        ours = engine_total(measured["closeprob"], "closeprob")
        for name in ENGINE_ORDER:
            engine = measured.get(name)
            if engine is None:
                continue
            if "skipped" in engine:
                lines.append(
                    f"| {run['size']} | | {name} | 0 | | | | | | skipped: {engine['skipped']} |"
                )
                continue
            total = engine_total(engine, name)
            read = "in query" if name.startswith("duckdb") else f"{engine['load_s']:.2f}"
            lines.append(
                f"| {run['size']} | {run['generated']['snapshot_rows']:,} | {name} "
                f"| {engine['runs']} | {read} | {engine['compute_s']:.2f} | {total:.2f} "
                f"| {total / ours:,.1f} | {engine['peak_rss_mib']:,.0f} | {engine['equal']} |"
            )
    return [*lines, ""]


THREADS_TARGET = 1.8  # 2 threads against 1 (issue 23)


def feature_thread_lines(results: Path) -> list[str]:
    """The full training feature set at 1, 2, … threads and its peak RSS against the tuned
    DuckDB query, interleaved in one run (`bench/feature_threads.py`)."""
    path = results / "feature_threads.json"
    if not path.is_file():
        return []
    run = json.loads(path.read_text(encoding="utf-8"))
    m, load = run["machine"], run["load_average"]
    rows = run["summary"]
    lines = [
        "## Features: threads, and memory against DuckDB",
        "",
        f"`.venv/bin/python {run['command']}` on `bench/generate.py` data "
        f"({rows[0]['rows']:,} snapshot rows); {m['date']}; {m['cpus']} CPUs ({m['cpu_model']}), "
        f"{m['ram_gib']} GiB RAM; 1-minute load average {load['before']:.1f} before, "
        f"{load['after']:.1f} after. Each run is a fresh process (reading included; peak RSS of "
        "the whole process); rounds interleave engines and thread counts; medians. "
        "'closeprob (full)' is the whole training feature set; DuckDB's tuned query and "
        "'closeprob (benchmark set)' compute the benchmark subset of it.",
        "",
        "| engine | features | threads | runs | read + compute s | × its 1 thread "
        "| process wall s | peak RSS MiB | load (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['features']} | {r['threads']} | {r['runs']} "
            f"| {r['work_s']:.2f} | {r['speedup']:.2f} | {r['wall_s']:.2f} "
            f"| {r['peak_rss_mib']:,.0f} | {r['load_before']:.1f} |"
        )
    lines.append("")
    by = {(r["engine"], r["threads"]): r for r in rows}
    full = (
        "closeprob (full)",
        "closeprob (full; read + validate)",
        "closeprob (full; plain strings)",
    )
    for name in (*full, "closeprob (full; dictionary strings)"):  # the last: older results
        two, duck = by.get((name, 2)), by.get(("duckdb (tuned)", 2))
        if two and duck:
            leaner = two["peak_rss_mib"] <= duck["peak_rss_mib"]
            lines.append(
                f"- {name}, 2 threads: {two['speedup']:.2f}× its 1-thread time "
                f"(target ≥ {THREADS_TARGET}: {yes(two['speedup'] >= THREADS_TARGET)}); peak "
                f"{two['peak_rss_mib']:,.0f} MiB against DuckDB's {duck['peak_rss_mib']:,.0f} "
                f"MiB at 2 threads (at or below: {yes(leaner)})."
            )
    profile = run.get("profile")
    if profile:
        amdahl = ", ".join(f"{n}: {x:.1f}×" for n, x in profile["amdahl"].items())
        lines.append(
            "- Profile (cProfile, 1 thread, full set): `build_features` "
            f"{profile['build_features_s']:.2f} s, "
            f"{profile['parallel_s']:.2f} s of it in parts split over threads; serial share "
            f"{profile['serial_share']:.0%}. Amdahl's bound on n cores from it (not measured "
            f"above 2): {amdahl}."
        )
    return [*lines, ""]


def scaling(runs: list[dict]) -> list[str]:
    lines = [
        "## Scaling",
        "",
        "closeprob's feature compute time per million (interactions + snapshot rows): about",
        "constant when cost grows linearly in their sum, not in their product.",
        "",
        "| size | interactions | snapshot rows | closeprob compute s | s per M (interactions "
        "+ rows) | whole training set: rows, s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        g = run["generated"]
        compute = run["engines"]["closeprob"]["compute_s"]
        units = (g["interactions"] + g["snapshot_rows"]) / 1e6
        stage = next(s for s in run["stages"]["stages"] if s["stage"] == "snapshot features")
        lines.append(
            f"| {run['size']} | {g['interactions']:,} | {g['snapshot_rows']:,} | {compute:.2f} "
            f"| {compute / units:.3f} | {stage['rows']:,}, {stage['seconds']:.1f} |"
        )
    return [*lines, ""]


def make_lines(runs: list[dict]) -> list[str]:
    lines = [
        "## Whole commands",
        "",
        "`make train` (validate, features, fit, calibrate, evaluate, value model, champion/",
        "challenger, MLflow logging and registration) and then `make predict` (the queue at the",
        "end of the data), on the generated data with a fresh SQLite MLflow store.",
        "",
        "| size | make train s | make train peak MiB | make predict s | make predict peak MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        train, predict = run["make"]["train"], run["make"]["predict"]
        lines.append(
            f"| {sized(run)} | {train['seconds']:.1f} | {train['peak_rss_mib']:,.0f} "
            f"| {predict['seconds']:.1f} | {predict['peak_rss_mib']:,.0f} |"
        )
    return [*lines, ""]


def stage_lines(runs: list[dict]) -> list[str]:
    lines = [
        "## Stages",
        "",
        "One process runs the stages in order (`bench/stages.py`); each stage's peak RSS is the",
        "process's high-water mark during that stage (reset before it), so it includes the data",
        "earlier stages hold. 'generate' is `bench/generate.py` in a process of its own.",
        "",
        "| size | stage | rows | s | peak RSS MiB |",
        "|---|---|---:|---:|---:|",
    ]
    for run in runs:
        g = run["generated"]
        lines.append(
            f"| {run['size']} | generate (+ write Parquet) | {g['interactions']:,} "
            f"| {g['generate_s'] + g['write_s']:.1f} | {g['peak_rss_mib']:,.0f} |"
        )
        for stage in run["stages"]["stages"]:
            rows = f"{stage['rows']:,}" if "rows" in stage else ""
            lines.append(
                f"| {run['size']} | {stage['stage']} | {rows} | {stage['seconds']:.2f} "
                f"| {stage['peak_rss_mib']:,.0f} |"
            )
    return [*lines, ""]


def scoring(runs: list[dict], results: Path) -> list[str]:
    lines = [
        "## Scoring throughput",
        "",
        "`bench/score_throughput.py`: a CRM generated over 45 days so that most deals are open",
        "at its end, scored by `build_queue` in a fresh process (features, calibrated p_close,",
        "values, rank, tiers, TreeSHAP reason codes for the deals people read: the default",
        "`ranking.reasons_for: read`), then the queue written as Parquet; then `build_queue` again",
        "with `ranking.reasons: 0` and with `ranking.reasons_for: all`. Rows measured before",
        "`reasons_for` existed gave every deal reasons and timed no write ('–').",
        "",
        "| open deals | interactions | read + validate s | build_queue s (deals with reasons) "
        "| write s | open deals/s end to end | reasons 0: open deals/s "
        "| reasons for all: open deals/s | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in load_throughput(results):
        n = row["open_deals_scored"]
        write_s = row.get("write_s")
        explained = row.get("deals_with_reasons", n)
        all_s = row.get("build_queue_all_reasons_s")
        lines.append(
            f"| {n:,} | {row['interactions']:,} | {row['read_validate_s']:.1f} "
            f"| {row['build_queue_s']:.2f} ({explained:,}) "
            f"| {'–' if write_s is None else f'{write_s:.2f}'} "
            f"| {n / (row['build_queue_s'] + (write_s or 0.0)):,.0f} "
            f"| {n / row['build_queue_no_reasons_s']:,.0f} "
            f"| {'–' if all_s is None else f'{n / all_s:,.0f}'} | {row['peak_mib']:,.0f} |"
        )
    machines = {tuple(row["machine"]) for row in load_throughput(results) if "machine" in row}
    for machine in sorted(machines):
        lines += ["", *(f"- {line}" for line in machine)]
    lines += [
        "",
        "Within each size's own run (the deals open at the end of the generated data):",
        "",
        "| size | open deals | score s | rank s | reasons s (deals read) | open deals/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        stages = {s["stage"]: s for s in run["stages"]["stages"]}
        lines.append(
            f"| {run['size']} | {stages['rank']['rows']:,} | {stages['score']['seconds']:.2f} "
            f"| {stages['rank']['seconds']:.2f} | {reasons_cell(stages.get('reasons'))} "
            f"| {scoring_rate(run):,.0f} |"
        )
    return [*lines, ""]


def spark_lines(results: Path) -> list[str]:
    """The Spark engine (local[2]) against the local engine (`bench/spark_engine.py`)."""
    path = results / "spark.json"
    if not path.is_file():
        return []
    run = json.loads(path.read_text(encoding="utf-8"))
    scored, trained = run["scoring"], run["training_features"]

    def row(what: str, record: dict, workers: bool = True) -> str:
        # The local rows run no workers (an idle JVM from an earlier step may be alive).
        shown = f"{record['workers_peak_mib']:,.0f}" if workers else "–"
        return f"| {what} | {record['seconds']:.1f} | {record['driver_peak_mib']:,.0f} | {shown} |"

    local = scored["local"]
    buckets = trained["buckets"]
    per_unit = [b["seconds"] / (b["events"] + b["rows"]) * 1e6 for b in buckets if b["rows"]]
    lines = [
        "## Spark engine (local[2]) against the local engine",
        "",
        "`bench/spark_engine.py` (`make bench`; `SPARK=` skips it). One process: the local",
        "engine, then Spark in local mode with 2 cores and "
        f"{scored['partitions']} partitions, on the same",
        "Parquet data (interactions as a folder of 8 files). Driver memory: the process's peak",
        "RSS during the step; workers: the peak of the summed RSS of the JVM and its Python",
        "workers.",
        "",
        *run["machine"],
        "",
        f"Scoring: {scored['open_deals']:,} open deals, {scored['interactions']:,} interactions; "
        f"same ranks: {scored['same_ranks']}, largest p_close difference "
        f"{scored['max_p_close_difference']:.1e}.",
        "",
        "| step | wall s | driver peak RSS MiB | workers peak RSS MiB |",
        "|---|---:|---:|---:|",
        row("local: read + validate + build_queue", local, workers=False),
        row("Spark: start the session", scored["spark_start"]),
        row("Spark: build_spark_queue (read, 3 jobs, rank on the driver)", scored["spark"]),
        "",
        f"Local steps: read + validate {local['read_validate_s']:.2f} s, features + p_close "
        f"{local['features_score_s']:.2f} s, rank on the driver {local['rank_s']:.2f} s, reasons "
        f"{local['reasons_s']:.2f} s.",
        "",
        f"Training features: {trained['snapshot_rows']:,} snapshot rows × "
        f"{trained['feature_columns']} features from {trained['interactions']:,} interactions; "
        f"largest difference from the local table {trained['max_feature_difference']:.1e}.",
        "",
        "| step | wall s | driver peak RSS MiB | workers peak RSS MiB |",
        "|---|---:|---:|---:|",
        row("local: build_features", trained["local"], workers=False),
        row("Spark: features per bucket, Parquet written and read back", trained["spark"]),
        "",
        f"Per bucket ({len(buckets)} buckets, each timing its own `build_features` call): "
        f"events {min(b['events'] for b in buckets):,}–{max(b['events'] for b in buckets):,}, "
        f"seconds {min(b['seconds'] for b in buckets):.2f}–"
        f"{max(b['seconds'] for b in buckets):.2f}, "
        f"median {statistics.median(per_unit):.2f} s per million (events + snapshot rows).",
        "",
    ]
    return lines
