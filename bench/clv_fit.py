"""How long do the BG/NBD and Gamma-Gamma fits take? Prints one line per size.

    .venv/bin/python bench/clv_fit.py 10000 100000

Customers are drawn from BG/NBD with the paper's CDNOW parameters (weeks, first purchases
spread over 12 weeks, 39-week calibration) at continuous times, so every summary is distinct:
the fit's worst case (it sums over distinct summaries). Spend per purchase is drawn from
Gamma-Gamma with the published CDNOW parameters. Target: under 1 s for 10,000 accounts.
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
    print("customers  repeat  bgnbd_fit_s  gamma_gamma_fit_s  ", end="")
    print("r      alpha  a      b      p     q     v")
    for n in sizes:
        customers = draw_customers(n, seed=n)
        repeat = customers[customers["frequency"] > 0]
        start = time.perf_counter()
        bg = fit_bgnbd(customers["frequency"], customers["recency"], customers["age"])
        bg_seconds = time.perf_counter() - start
        start = time.perf_counter()
        gg = fit_gamma_gamma(repeat["frequency"], repeat["monetary"])
        gg_seconds = time.perf_counter() - start
        print(
            f"{n:<11,}{len(repeat):<8,}{bg_seconds:<13.3f}{gg_seconds:<19.3f}"
            f"{bg.r:<7.3f}{bg.alpha:<7.3f}{bg.a:<7.3f}{bg.b:<7.3f}{gg.p:<6.2f}{gg.q:<6.2f}{gg.v:.2f}"
        )


if __name__ == "__main__":
    main([int(size) for size in sys.argv[1:]] or [10_000])
