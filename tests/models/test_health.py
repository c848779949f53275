"""Model health measures against naive references, and their invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from closeprob.models.health import (
    PSI_FLOOR,
    bin_shares,
    build_reference,
    category_bins,
    days_stale,
    expected_roc_auc,
    feature_psi_table,
    health_flags,
    is_batch_level,
    measure_batch,
    missing_event_types,
    numeric_bins,
    numeric_edges,
    psi,
    psi_by_group,
    psi_noise_floor,
    realised_against_expected,
    retrain_reason,
    simulated_roc_auc,
)
from tests.conftest import utc

shares = st.lists(st.floats(0.0, 1.0), min_size=2, max_size=12).filter(lambda s: sum(s) > 0)


def naive_psi(expected: list[float], actual: list[float]) -> float:
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, PSI_FLOOR), max(a, PSI_FLOOR)
        total += (a - e) * np.log(a / e)
    return total


def naive_expected_auc(p: np.ndarray) -> float:
    above = pairs = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if i != j:
                weight = p[i] * (1 - p[j])
                pairs += weight
                above += weight * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    return above / pairs


@given(shares, st.randoms(use_true_random=False))
def test_psi_is_never_negative_and_zero_for_identical_shares(raw: list[float], rnd: object) -> None:
    expected = np.array(raw) / sum(raw)
    actual = np.array(sorted(raw, key=lambda _: rnd.random())) / sum(raw)  # type: ignore[attr-defined]
    assert psi(expected, actual) >= 0.0
    assert psi(expected, expected) == 0.0


@given(shares, shares)
def test_psi_equals_the_naive_sum_over_bins(left: list[float], right: list[float]) -> None:
    n = min(len(left), len(right))
    e, a = np.array(left[:n]) / sum(left[:n] or [1]), np.array(right[:n]) / sum(right[:n] or [1])
    assert psi(e, a) == pytest.approx(naive_psi(list(e), list(a)), rel=1e-9, abs=1e-12)


def test_numeric_bins_put_a_point_mass_in_one_bin_and_missing_last() -> None:
    values = np.array([0, 0, 0, 0, 0, 0, 1, 2, 3, np.nan])
    edges = numeric_edges(values)
    assert edges[0] == 0.0 and len(edges) == len(set(edges))
    bins = numeric_bins(values, edges)
    assert (bins[:6] == 0).all() and bins[-1] == len(edges) + 1
    assert numeric_bins(np.array([-5.0, 99.0]), edges).tolist() == [0, len(edges)]


def test_category_bins_match_levels_normalised_and_count_unseen_and_missing() -> None:
    values = pd.Series([" Software", "retail", "Mining", None], dtype="str")
    assert category_bins(values, ["retail", "software"]).tolist() == [1, 0, 2, 3]


def test_bin_shares_sum_to_one() -> None:
    assert bin_shares(np.array([0, 0, 2]), 4).tolist() == pytest.approx([2 / 3, 0, 1 / 3, 0])


def test_noise_floor_shrinks_with_the_batch_and_matches_chance_psi_of_same_distribution() -> None:
    rng = np.random.default_rng(0)
    reference = rng.gamma(2.0, size=50_000)
    edges = numeric_edges(reference)
    expected = bin_shares(numeric_bins(reference, edges), len(edges) + 2)
    bins = int((expected > 0).sum())
    for n in (100, 400, 2000):
        chance = [
            psi(expected, bin_shares(numeric_bins(rng.gamma(2.0, size=n), edges), len(edges) + 2))
            for _ in range(400)
        ]
        # The chance PSI's mean is about (bins − 1)(1/n + 1/m); its 99th percentile, the floor.
        assert np.mean(chance) == pytest.approx((bins - 1) * (1 / n + 1 / 50_000), rel=0.25)
        assert np.quantile(chance, 0.99) == pytest.approx(
            psi_noise_floor(bins, n, 50_000, 0.01), rel=0.3
        )
    assert psi_noise_floor(bins, 100, 50_000, 0.001) > psi_noise_floor(bins, 1000, 50_000, 0.001)
    assert psi_noise_floor(bins, 0, 50_000, 0.001) == float("inf")


def test_expected_roc_auc_equals_the_naive_pairwise_sum_with_ties() -> None:
    p = np.round(np.random.default_rng(1).random(40), 1)
    assert expected_roc_auc(p) == pytest.approx(naive_expected_auc(p), rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=30))
def test_expected_roc_auc_lies_between_0_and_1_or_is_undefined(values: list[float]) -> None:
    auc = expected_roc_auc(np.array(values))
    assert np.isnan(auc) or 0.0 <= auc <= 1.0


def test_expected_roc_auc_equals_the_realised_one_on_average_when_p_is_calibrated() -> None:
    p = np.random.default_rng(2).beta(2.0, 5.0, size=400)
    realised = simulated_roc_auc(p, draws=2000, seed=3)
    assert np.nanmean(realised) == pytest.approx(expected_roc_auc(p), abs=0.002)


def test_simulated_roc_auc_is_sklearns_roc_auc_of_each_draw() -> None:
    p = np.random.default_rng(4).random(50)
    auc = simulated_roc_auc(p, draws=1, seed=5)[0]
    won = np.random.default_rng(5).random(50) < p
    assert auc == pytest.approx(roc_auc_score(won, p))


def test_an_uninformative_score_expects_an_roc_auc_of_one_half() -> None:
    assert expected_roc_auc(np.full(10, 0.3)) == pytest.approx(0.5)
    assert np.isnan(expected_roc_auc(np.zeros(5)))


def training_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "deal_id": [f"D{i}" for i in range(n)],
            "as_of": np.repeat(pd.date_range("2024-01-01", periods=4, freq="7D", tz="UTC"), n // 4),
            "touches_30d": rng.poisson(4.0, size=n).astype(float),
            "market_touches_30d": np.repeat([3.0, 3.5, 4.0, 4.5], n // 4),
            "attr_industry": rng.choice(["retail", "software", "mining"], size=n),
        }
    )


def reference_of(rows: pd.DataFrame) -> dict[str, object]:
    return build_reference(
        rows,
        ["touches_30d", "market_touches_30d", "attr_industry"],
        ["attr_industry"],
        np.linspace(0.05, 0.6, len(rows)),
        pd.Series(["email"] * 90 + ["call"] * 10),
        "2024-01-22",
        90,
    )


def test_a_batch_like_the_training_rows_drifts_nowhere() -> None:
    reference = reference_of(training_rows(4000, 0))
    batch = training_rows(400, 1)
    table = feature_psi_table(reference, batch, psi_warn=0.25, alpha=0.001)
    assert not table["drifted"].any()
    level = table.set_index("feature").loc["market_touches_30d"]
    assert level["kind"] == "level" and np.isnan(level["psi"])


def test_a_batch_whose_activity_collapsed_or_levels_were_renamed_names_those_features() -> None:
    reference = reference_of(training_rows(4000, 0))
    batch = training_rows(400, 1)
    batch["touches_30d"] = np.floor(batch["touches_30d"] * 0.2)
    batch["attr_industry"] = batch["attr_industry"].map(lambda v: f"{v} inc")
    table = feature_psi_table(reference, batch, psi_warn=0.25, alpha=0.001)
    assert set(table.loc[table["drifted"], "feature"]) == {"touches_30d", "attr_industry"}
    assert table.set_index("feature").loc["attr_industry", "unseen_share"] == 1.0


def test_the_same_shift_in_a_tiny_batch_is_within_chance() -> None:
    reference = reference_of(training_rows(4000, 0))
    batch = training_rows(4000, 1).head(8)
    batch["touches_30d"] = batch["touches_30d"] + 1
    table = feature_psi_table(reference, batch, psi_warn=0.25, alpha=0.001)
    row = table.set_index("feature").loc["touches_30d"]
    assert row["psi"] > 0.25 and not row["drifted"]


def test_reference_is_plain_json() -> None:
    import json

    reference = reference_of(training_rows(400, 0))
    assert json.loads(json.dumps(reference)) == reference


def test_missing_event_types_count_only_types_the_batch_should_hold() -> None:
    reference = {"event_types": {"email": 0.9, "call": 0.08, "visit": 0.02}}
    assert missing_event_types(reference, pd.Series({"email": 100})) == {"call": 0.08}
    assert missing_event_types(reference, pd.Series({"email": 10})) == {}
    assert missing_event_types(reference, pd.Series([], dtype="int64")) == {}


def test_days_stale_counts_beyond_trained_through_plus_the_horizon() -> None:
    reference = {"trained_through": "2024-10-01", "horizon_days": 90}
    assert days_stale(reference, utc("2024-12-30")) == 0
    assert days_stale(reference, utc("2025-01-10")) == 11


def test_measure_batch_gives_the_six_metrics_and_flags() -> None:
    rows = training_rows(4000, 0)
    reference = reference_of(rows)
    batch = training_rows(400, 1)
    health = measure_batch(
        reference,
        batch,
        np.full(400, 0.2),
        pd.Series({"email": 50}),
        utc("2024-05-01"),
        0.25,
        1e-3,
    )
    assert set(health.metrics) == {
        "health_max_feature_psi",
        "health_score_psi",
        "health_expected_roc_auc",
        "health_expected_wins",
        "health_unseen_level_share",
        "health_days_stale",
        "health_drifted_features",
    }
    assert health.metrics["health_expected_wins"] == pytest.approx(80.0)
    flags = health_flags(health)
    assert flags["score_drifted"] and flags["drift"] and flags["days_stale"] == 10
    assert flags["missing_event_types"] == ["call"]


def test_psi_by_group_equals_psi_of_each_groups_rows() -> None:
    rng = np.random.default_rng(6)
    bins, groups = rng.integers(0, 5, size=300), rng.integers(0, 4, size=300)
    expected = bin_shares(bins, 5)
    by_group = psi_by_group(bins, groups, expected)
    naive = [psi(expected, bin_shares(bins[groups == g], 5)) for g in range(4)]
    assert by_group == pytest.approx(naive)


def test_a_track_record_that_grows_with_time_is_unstable_and_never_drifts() -> None:
    rows = training_rows(4000, 0)
    codes = pd.factorize(rows["as_of"], sort=True)[0]
    rows["touches_30d"] = codes * 10.0 + np.random.default_rng(7).random(len(rows))
    reference = reference_of(rows)
    assert reference["features"]["touches_30d"]["date_psi_median"] > 0.25
    batch = training_rows(400, 1).assign(touches_30d=100.0)
    row = feature_psi_table(reference, batch, 0.25, 1e-3).set_index("feature").loc["touches_30d"]
    assert row["unstable"] and row["psi"] > 1.0 and not row["drifted"]


def test_a_feature_that_varies_between_training_dates_needs_more_than_that_to_drift() -> None:
    rows = training_rows(4000, 0)
    codes = pd.factorize(rows["as_of"], sort=True)[0]
    rows["touches_30d"] = rows["touches_30d"] + np.select([codes == 2, codes == 3], [2, 4], 0)
    reference = reference_of(rows)
    spread = reference["features"]["touches_30d"]["spread"]
    batch = rows[codes == 2].head(400)
    row = feature_psi_table(reference, batch, 0.25, 1e-3).set_index("feature").loc["touches_30d"]
    assert 0.25 < row["psi"] < spread
    assert row["threshold"] == pytest.approx(spread) and not row["drifted"]


def test_expected_queue_metrics_average_to_the_expected_roc_auc_and_wins() -> None:
    rng = np.random.default_rng(8)
    p, value = rng.beta(2.0, 5.0, size=300), rng.uniform(1, 10, size=300)
    row = realised_against_expected(
        (rng.random(300) < p).astype(float), p, value, p * value, 30, draws=400, seed=9
    )
    assert row["expected_roc_auc"] == pytest.approx(expected_roc_auc(p), abs=0.005)
    assert row["expected_wins"] == pytest.approx(p.sum())
    assert row["roc_auc_low"] < row["expected_roc_auc"] < row["roc_auc_high"]
    assert row["ece_low"] <= row["expected_ece"] <= row["ece_high"]


def test_a_calibrated_queue_lands_inside_its_expected_interval_about_95_percent_of_the_time() -> (
    None
):
    rng = np.random.default_rng(10)
    p, value = rng.beta(2.0, 5.0, size=300), np.ones(300)
    inside = []
    for seed in range(20):
        won = (np.random.default_rng(100 + seed).random(300) < p).astype(float)
        row = realised_against_expected(won, p, value, p, 30, draws=100, seed=seed)
        inside.append(row["roc_auc_low"] <= row["roc_auc"] <= row["roc_auc_high"])
    assert np.mean(inside) >= 0.8


def test_a_retrain_is_due_after_consecutive_misses_or_when_stale() -> None:
    assert retrain_reason([0.8, 0.6, 0.6], [0.7, 0.7, 0.7], 2, 0.0, 90) is not None
    assert retrain_reason([0.6, 0.8, 0.6], [0.7, 0.7, 0.7], 2, 0.0, 90) is None
    assert "stale" in str(retrain_reason([0.8], [0.7], 2, 120.0, 90))
    assert retrain_reason([0.8], [0.7], 2, None, 90) is None


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from([0.0, -0.0, 1.0, 2.5, np.nan, np.inf]), st.integers(0, 3)),
        max_size=12,
    )
)
def test_a_batch_level_column_has_one_distinct_known_value_on_every_date(
    rows: list[tuple[float, int]],
) -> None:
    values = pd.Series([value for value, _ in rows], dtype=float)
    as_of = pd.Series([date for _, date in rows], dtype=float)
    known = pd.DataFrame({"value": values, "as_of": as_of}).dropna()
    one_each = len(known) > 0 and known.groupby("as_of")["value"].nunique().max() <= 1
    assert is_batch_level(values, as_of) == bool(one_each)
