"""The deals whose feature rows the Spark engine's health reads: a uniform sample, the same for
the same deals and seed, in queue order, every deal when there are no more than asked."""

from __future__ import annotations

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from closeprob.pipeline.spark.health import health_sample


@given(n=st.integers(0, 300), size=st.integers(1, 400), seed=st.integers(0, 2**32 - 1))
def test_the_sample_is_distinct_deals_in_queue_order_and_all_when_fewer(
    n: int, size: int, seed: int
) -> None:
    deals = pd.Series([f"D{i:04d}" for i in range(n)], index=range(100, 100 + n))
    sample = health_sample(deals, size, seed)
    assert len(sample) == min(n, size)
    assert sample.is_unique and set(sample) <= set(deals)
    positions = deals.reset_index(drop=True).pipe(lambda d: pd.Index(d)).get_indexer(sample)
    assert list(positions) == sorted(positions)  # queue order kept
    assert sample.equals(health_sample(deals, size, seed))
    if n <= size:
        assert sample.tolist() == deals.tolist()


def test_different_seeds_draw_different_samples() -> None:
    deals = pd.Series([f"D{i}" for i in range(1000)])
    assert not health_sample(deals, 50, 1).equals(health_sample(deals, 50, 2))
