"""What this machine's cores give in parallel, before any engine's threads are blamed: the same
CPU-bound, single-threaded work (a NumPy stable sort of 2 M doubles, 10 times) in one process
alone, then in N processes at once. On N real, idle cores the N processes take as long as one
(throughput N×); on cores that share a physical core (SMT siblings) or a host that is
overcommitted, they take longer, and no engine can scale past that ratio.

    .venv/bin/python bench/two_core_ceiling.py --rounds 5
    .venv/bin/python bench/two_core_ceiling.py --rounds 5 --processes 2 --wait 600

A round is kept only when other processes used less than `--others` of a core during it
(from /proc/stat's busy time minus the CPU time of this script's children): on a shared
machine the script waits (up to `--wait` seconds) for quiet rounds rather than measure the
neighbours. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

WORK = (
    "import numpy as np\n"
    "a = np.random.default_rng(0).random(2_000_000)\n"
    "for _ in range(10):\n"
    "    np.sort(a, kind='stable')\n"
)
TICKS = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds all processes have used since boot (every field but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_at_once(n: int) -> tuple[float, float]:
    """Wall seconds of `n` copies of WORK started together; the cores other processes used
    meanwhile (their CPU seconds per wall second)."""
    busy, ours, start = busy_seconds(), children_seconds(), time.perf_counter()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    copies = [subprocess.Popen([sys.executable, "-c", WORK], env=env) for _ in range(n)]
    for copy in copies:
        copy.wait()
    wall = time.perf_counter() - start
    others = busy_seconds() - busy - (children_seconds() - ours)
    return wall, max(0.0, others) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="quiet rounds to keep")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--others", type=float, default=0.05, help="cores others may use")
    parser.add_argument("--wait", type=float, default=300.0, help="seconds to wait in all")
    args = parser.parse_args()
    n, deadline = args.processes, time.time() + args.wait
    kept: list[float] = []
    print(f"{os.cpu_count()} CPUs; one copy alone vs {n} at once; load {os.getloadavg()}")
    while len(kept) < args.rounds and time.time() < deadline:
        before = busy_seconds()
        time.sleep(1.0)
        if busy_seconds() - before > args.others:
            continue  # a neighbour is busy: wait for a quiet moment
        one, others_one = run_at_once(1)
        many, others_many = run_at_once(n)
        quiet = max(others_one, others_many) < args.others
        ratio = n * one / many
        print(
            f"  one {one:.2f} s, {n} at once {many:.2f} s: throughput {ratio:.2f}x "
            f"(others used {others_one:.2f} / {others_many:.2f} cores: "
            f"{'kept' if quiet else 'dropped'})",
            flush=True,
        )
        if quiet:
            kept.append(ratio)
    if kept:
        print(
            f"throughput of {n} processes over one, median of {len(kept)} quiet rounds: "
            f"{statistics.median(kept):.2f}x (range {min(kept):.2f}-{max(kept):.2f}); "
            f"the ceiling of any engine's {n}-thread speed-up here"
        )
    else:
        print(f"no quiet round in {args.wait:.0f} s: the machine was never idle enough")


if __name__ == "__main__":
    main()
