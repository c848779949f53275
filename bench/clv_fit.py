"""How long do the BG/NBD and Gamma-Gamma fits take? Prints one line per size.

    .venv/bin/python bench/clv_fit.py 10000 100000

Customers are drawn from BG/NBD with the paper's CDNOW parameters (weeks, first purchases
spread over 12 weeks, 39-week calibration) at continuous times, so every summary is distinct:
the fit's worst case (it sums over distinct summaries). Spend per purchase is drawn from
Gamma-Gamma with the published CDNOW parameters. Target: under 1 s for 10,000 accounts.
Wall-clock seconds, and in brackets the CPU seconds of this process (all threads): on a
shared machine the wall clock counts other jobs' time too.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from closeprob.models.clv import fit_bgnbd, fit_gamma_gamma

R, ALPHA, A, B = 0.243, 4.414, 0.793, 2.426
P, Q, V = 6.25, 3.74, 15.44
CALIBRATION_WEEKS = 39.0


def draw_customers(n: int, seed: int) -> pd.DataFrame:
    """frequency, recency, age (weeks) and mean repeat spend of `n` simulated customers."""
    rng = np.random.default_rng(seed)
    age = CALIBRATION_WEEKS - rng.uniform(0, 12, n)
    rate = rng.gamma(R, 1 / ALPHA, n)
    dropout = rng.beta(A, B, n)
    frequency, recency = np.zeros(n, dtype=int), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / rate[i])
            if t > age[i]:
                break
            frequency[i], recency[i] = frequency[i] + 1, t
            if rng.random() < dropout[i]:
                break
    nu = rng.gamma(Q, 1 / V, n)
    spend = rng.gamma(P * np.maximum(frequency, 1), 1 / nu) / np.maximum(frequency, 1)
    return pd.DataFrame({"frequency": frequency, "recency": recency, "age": age, "monetary": spend})


def main(sizes: list[int]) -> None:
    print("customers  repeat  bgnbd_s (cpu)    gamma_gamma_s (cpu)  ", end="")
    print("r      alpha  a      b      p     q     v")
    for n in sizes:
        customers = draw_customers(n, seed=n)
        repeat = customers[customers["frequency"] > 0]
        start, cpu = time.perf_counter(), time.process_time()
        bg = fit_bgnbd(customers["frequency"], customers["recency"], customers["age"])
        bg_s = f"{time.perf_counter() - start:.3f} ({time.process_time() - cpu:.3f})"
        start, cpu = time.perf_counter(), time.process_time()
        gg = fit_gamma_gamma(repeat["frequency"], repeat["monetary"])
        gg_s = f"{time.perf_counter() - start:.3f} ({time.process_time() - cpu:.3f})"
        print(
            f"{n:<11,}{len(repeat):<8,}{bg_s:<17}{gg_s:<21}"
            f"{bg.r:<7.3f}{bg.alpha:<7.3f}{bg.a:<7.3f}{bg.b:<7.3f}{gg.p:<6.2f}{gg.q:<6.2f}{gg.v:.2f}"
        )


if __name__ == "__main__":
    main([int(size) for size in sys.argv[1:]] or [10_000])
