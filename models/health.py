"""Model health without labels: how far a batch lies from the rows the model was trained on,
and the accuracy its calibrated probabilities expect.

The reference is a JSON-able dict built from the training rows and stored with the model:
per feature the bin edges and shares (numeric: deciles fixed at training, plus a missing bin;
categorical: the levels seen, an unseen bin and a missing bin), the same for the score, the
share of each event type among training interactions, and `trained_through`. A batch is
measured against it by the population stability index (PSI)

    PSI = Σ_b (a_b − e_b) · ln(a_b / e_b)

over the fixed bins (a: the batch's shares, e: the reference's, both floored at PSI_FLOOR so an
empty bin counts, not divides by zero). For a batch drawn from the reference's own distribution,
n·m/(n+m)·PSI is approximately χ² with (bins − 1) degrees of freedom, so PSI shrinks like
(bins − 1)·(1/n + 1/m): a small batch shows a large PSI by chance (`psi_noise_floor`). Rows of
one batch are not independent either: deals of one owner share the owner's track record, and
every deal of a batch shares its date's season. So the reference also keeps, per feature, how
far the training's own snapshot dates lie from the pooled rows beyond chance (the median and
95th percentile of their PSI less its chance level, the `spread`). A feature drifts when its
PSI passes the configured threshold, the chance level of the batch's size and its spread,
unless it is unstable in training (its median date already past the threshold: a track
record that grows with time). docs/model-health.md measures all three on the built-in and
public data.

Pure functions: frames and arrays in, numbers and dicts out; no disk, no MLflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import chi2, rankdata

from closeprob.features.attributes import normalise_levels
from closeprob.models.classifier import CloseModel
from closeprob.models.metrics import expected_calibration_error, value_captured

REFERENCE_SCHEMA = 1
DECILES = np.linspace(0.1, 0.9, 9)
PSI_FLOOR = 1e-4  # the smallest share a bin counts with (an empty bin is not ln 0)
MIN_EXPECTED_EVENTS = 5.0  # an event type is "missing" only if the batch should hold this many
SPREAD_QUANTILE = 0.95  # of the PSI of the training's own snapshot dates: a feature's spread


def numeric_edges(values: ArrayLike) -> list[float]:
    """The inner bin edges of a numeric column: its distinct deciles (a point mass, such as
    many zero counts, gives one edge, not nine); missing values are not binned here."""
    finite = np.asarray(values, dtype=float)
    finite = finite[~np.isnan(finite)]
    if len(finite) == 0:
        return []
    return [float(e) for e in np.unique(np.quantile(finite, DECILES))]


def numeric_bins(values: ArrayLike, edges: list[float]) -> np.ndarray:
    """Each value's bin: i for edges[i−1] < x ≤ edges[i] (0 below the first edge,
    len(edges) above the last), len(edges) + 1 for missing."""
    x = np.asarray(values, dtype=float)
    bins = np.searchsorted(np.asarray(edges, dtype=float), x, side="left")
    return np.where(np.isnan(x), len(edges) + 1, bins)


def category_bins(values: pd.Series, levels: list[str]) -> np.ndarray:
    """Each value's bin: the index of its level (compared normalised, as the model does),
    len(levels) for a level never seen in training, len(levels) + 1 for missing."""
    normalised = normalise_levels(values)
    codes = pd.Index(levels, dtype=object).get_indexer(pd.Index(normalised.astype(object)))
    codes = np.where(codes < 0, len(levels), codes)
    return np.where(normalised.isna().to_numpy(), len(levels) + 1, codes)


def bin_shares(bins: np.ndarray, n_bins: int) -> np.ndarray:
    """The share of rows in each of `n_bins` bins (zeros when there are no rows)."""
    counts = np.bincount(np.asarray(bins, dtype=np.int64), minlength=n_bins).astype(float)
    return counts / counts.sum() if counts.sum() > 0 else counts


def psi(expected: ArrayLike, actual: ArrayLike, floor: float = PSI_FLOOR) -> float:
    """Σ (a − e)·ln(a / e) over bins, with both shares floored at `floor`: ≥ 0, and 0 when
    the two distributions are equal."""
    e = np.maximum(np.asarray(expected, dtype=float), floor)
    a = np.maximum(np.asarray(actual, dtype=float), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_noise_floor(n_bins: int, batch_rows: int, reference_rows: int, alpha: float) -> float:
    """The PSI a batch of `batch_rows` drawn from the reference's own distribution passes with
    probability `alpha`: the χ² quantile with (bins − 1) degrees of freedom, times
    (1/n + 1/m). Infinite for an empty batch."""
    if batch_rows <= 0 or n_bins < 2:
        return float("inf") if batch_rows <= 0 else 0.0
    scale = 1.0 / batch_rows + 1.0 / max(reference_rows, 1)
    return float(chi2.isf(alpha, n_bins - 1) * scale)


def is_batch_level(values: pd.Series, as_of: pd.Series) -> bool:
    """A column with one value per snapshot date (the market's activity level): every deal of a
    batch shares it, so its PSI against many dates measures the date, not the deals."""
    known = pd.DataFrame({"value": values.to_numpy(), "as_of": as_of.to_numpy()}).dropna()
    if len(known) == 0:
        return False
    # one value per date: its smallest equals its largest (groupby min/max, not nunique's
    # hashing: 3.3 M rows 0.24 -> 0.05 s per feature)
    per_date = known.groupby("as_of")["value"]
    return bool((per_date.min() == per_date.max()).all())


def psi_by_group(bins: np.ndarray, groups: np.ndarray, expected: ArrayLike) -> np.ndarray:
    """The PSI of each group's rows (`groups`: codes 0..g−1) against the `expected` shares."""
    e = np.maximum(np.asarray(expected, dtype=float), PSI_FLOOR)
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    counts = np.bincount(groups * len(e) + bins, minlength=n_groups * len(e))
    counts = counts.reshape(n_groups, len(e)).astype(float)
    a = np.maximum(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0), PSI_FLOOR)
    return np.asarray(np.sum((a - e) * np.log(a / e), axis=1))


def binned_reference(bins: np.ndarray, n_bins: int, dates: np.ndarray) -> dict[str, Any]:
    """Shares over the bins, and how far the training's own snapshot dates lie from them
    beyond chance: each date's PSI less the (bins − 1)/rows a date of its size shows by
    chance, floored at 0; their median and 95th percentile (`spread`). A feature whose median
    date is already far from the pooled rows (a track record that grows with time) cannot
    tell a drifted batch from an ordinary one."""
    shares = bin_shares(bins, n_bins)
    occupied = int((shares > 0).sum())
    rows_per_date = np.bincount(dates).astype(float)
    chance = (occupied - 1) / np.maximum(rows_per_date, 1.0)
    per_date = np.maximum(psi_by_group(bins, dates, shares) - chance, 0.0)
    return {
        "shares": shares.tolist(),
        "date_psi_median": float(np.median(per_date)),
        "spread": float(np.quantile(per_date, SPREAD_QUANTILE)),
    }


def feature_reference(values: pd.Series, dates: np.ndarray, categorical: bool) -> dict[str, Any]:
    """One feature's reference from its training rows (`dates`: codes of their snapshot dates)."""
    if categorical:
        levels = sorted(normalise_levels(values.dropna().astype(str)).unique())
        bins = category_bins(values, levels)
        return {"kind": "categorical", "levels": levels} | binned_reference(
            bins, len(levels) + 2, dates
        )
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    if is_batch_level(numbers, pd.Series(dates)):
        per_date = numbers.groupby(dates).first().dropna()
        return {"kind": "level", "low": float(per_date.min()), "high": float(per_date.max())}
    edges = numeric_edges(numbers)
    bins = numeric_bins(numbers, edges)
    return {"kind": "numeric", "edges": edges} | binned_reference(bins, len(edges) + 2, dates)


def build_reference(
    features: pd.DataFrame,
    names: list[str],
    categorical: list[str],
    p_close: ArrayLike,
    event_types: pd.Series,
    trained_through: str,
    horizon_days: int,
) -> dict[str, Any]:
    """The health reference of a model from its training rows (`features`, with `as_of`), their
    calibrated probabilities and the interaction types it learned from; JSON-able."""
    dates = pd.factorize(features["as_of"], sort=True)[0]
    p = np.asarray(p_close, dtype=float)
    score_edges = numeric_edges(p)
    type_shares = event_types.dropna().astype(str).value_counts(normalize=True)
    return {
        "schema": REFERENCE_SCHEMA,
        "rows": len(features),
        "trained_through": trained_through,
        "horizon_days": int(horizon_days),
        "features": {
            name: feature_reference(features[name], dates, name in categorical) for name in names
        },
        "score": {"kind": "numeric", "edges": score_edges}
        | binned_reference(numeric_bins(p, score_edges), len(score_edges) + 2, dates),
        "event_types": {str(k): float(v) for k, v in type_shares.items()},
    }


def training_reference(
    model: CloseModel,
    fitted: pd.DataFrame,
    interactions: pd.DataFrame,
    last_fit_date: pd.Timestamp,
    trained_through: str,
    horizon_days: int,
) -> dict[str, Any]:
    """A deployed model's reference from the rows it was fitted on (`fitted`, with `as_of`:
    all of them, or a uniform sample of them — the reference counts the rows it saw, so the
    chance thresholds follow), their calibrated probabilities and the types of the
    interactions known before its last fit date `last_fit_date`."""
    known = interactions["occurred_at"] < last_fit_date
    return build_reference(
        fitted,
        model.feature_names,
        list(model.categories),
        model.predict_proba(fitted),
        interactions.loc[known, "type"],
        trained_through,
        horizon_days,
    )


def batch_shares(values: pd.Series, reference: dict[str, Any]) -> np.ndarray:
    """A batch column's shares over the bins of its `reference` (numeric or categorical)."""
    if reference["kind"] == "categorical":
        levels = reference["levels"]
        return bin_shares(category_bins(values, levels), len(levels) + 2)
    edges = reference["edges"]
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    return bin_shares(numeric_bins(numbers, edges), len(edges) + 2)


def occupied_bins(reference: dict[str, Any], batch: np.ndarray) -> int:
    """Bins that either side fills: the degrees of freedom of the chance PSI, plus one."""
    expected = np.asarray(reference["shares"], dtype=float)
    return int(((expected > 0) | (batch > 0)).sum())


def feature_psi_table(
    reference: dict[str, Any], features: pd.DataFrame, psi_warn: float, alpha: float
) -> pd.DataFrame:
    """One row per model feature: its kind, PSI against the reference and the threshold it must
    pass to count as drift: the largest of `psi_warn`, the chance PSI of this batch's size
    (`psi_noise_floor` at `alpha`) and the feature's spread (the PSI its training snapshot
    dates reach, 95th percentile). A feature `unstable` in training (its median date already
    past `psi_warn`) never drifts; batch-level columns show their value and the training
    range. Sorted by PSI, largest first."""
    rows, n, m = [], len(features), int(reference["rows"])
    for name, ref in reference["features"].items():
        row: dict[str, Any] = {"feature": name, "kind": ref["kind"]}
        if ref["kind"] == "level":
            value = float(pd.to_numeric(features[name], errors="coerce").median())
            outside = not (ref["low"] <= value <= ref["high"])
            row |= {"value": value, "low": ref["low"], "high": ref["high"], "outside": outside}
        else:
            shares = batch_shares(features[name], ref)
            chance = psi_noise_floor(occupied_bins(ref, shares), n, m, alpha)
            threshold = max(psi_warn, chance, ref["spread"])
            unstable = ref["date_psi_median"] > psi_warn
            value = psi(ref["shares"], shares)
            row |= {
                "psi": value,
                "threshold": threshold,
                "chance_psi": chance,
                "training_spread": ref["spread"],
                "unstable": unstable,
                "drifted": bool(value > threshold and not unstable),
            }
            if ref["kind"] == "categorical":
                row["unseen_share"] = float(shares[len(ref["levels"])])
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("psi", "threshold", "drifted", "unstable"):
        if column not in table:
            table[column] = np.nan
    table["drifted"] = table["drifted"].fillna(False).astype(bool)
    return table.sort_values("psi", ascending=False, na_position="last").reset_index(drop=True)


def unseen_level_share(table: pd.DataFrame) -> float:
    """The share of categorical cells (rows × attributes) whose level was never seen in
    training: the mean of the attributes' unseen shares (0 without attributes)."""
    if "unseen_share" not in table:
        return 0.0
    shares = table["unseen_share"].dropna()
    return float(shares.mean()) if len(shares) else 0.0


def unusable_reference(reference: dict[str, Any] | None) -> str | None:
    """Why a model's health reference cannot be used (None: it can): a model trained before
    closeprob stored one, or a reference of another schema."""
    if reference is None:
        return "the model was trained before closeprob stored one"
    if reference.get("schema") != REFERENCE_SCHEMA:
        return (
            f"the model's reference has schema {reference.get('schema')!r}, this closeprob "
            f"reads {REFERENCE_SCHEMA}; retrain"
        )
    return None


def health_window_days(windows_days: Sequence[int]) -> int:
    """The window whose interactions a batch's event types are counted in: the model's
    longest feature window (90 days without windows)."""
    return max(windows_days, default=90)


def batch_type_counts(
    interactions: pd.DataFrame, deal_ids: ArrayLike, as_of: pd.Timestamp, days: int
) -> pd.Series:
    """How many interactions of each type the batch deals (`deal_ids`) had in [as_of − days,
    as_of): what their window features were counted from. Indexed by type (text)."""
    times = interactions["occurred_at"]
    recent = interactions[(times >= as_of - pd.Timedelta(days=days)) & (times < as_of)]
    types = recent.loc[recent["deal_id"].isin(set(pd.Series(deal_ids))), "type"]
    return types.dropna().astype(str).value_counts()


def missing_event_types(reference: dict[str, Any], type_counts: pd.Series) -> dict[str, float]:
    """Event types the model learned from that the batch's interactions lack (`type_counts`:
    the batch's interactions counted by type) although, at their training share, it should hold
    at least MIN_EXPECTED_EVENTS of them; each with its training share (a renamed or retired
    type). Empty when the batch has no interactions."""
    total = float(type_counts.sum())
    return {
        name: share
        for name, share in reference["event_types"].items()
        if type_counts.get(name, 0) == 0 and share * total >= MIN_EXPECTED_EVENTS
    }


def expected_roc_auc(p: ArrayLike) -> float:
    """The ROC-AUC a ranking by `p` expects if `p` is calibrated (outcomes independent draws
    of it): confidence-based estimation, E[TP] = Σ p and E[FP] = Σ (1 − p) over the rows above
    each threshold, taken over pairs of distinct rows (ties count half):

        Σ_{i≠j} p_i (1 − p_j) [p_i > p_j] / Σ_{i≠j} p_i (1 − p_j).

    NaN when fewer than two rows or no pair can differ (every p 0 or every p 1)."""
    p = np.asarray(p, dtype=float)
    q = 1.0 - p
    values, codes = np.unique(p, return_inverse=True)
    sum_p = np.bincount(codes, weights=p, minlength=len(values))
    sum_q = np.bincount(codes, weights=q, minlength=len(values))
    sum_pq = np.bincount(codes, weights=p * q, minlength=len(values))
    q_below = np.cumsum(sum_q) - sum_q
    above = np.sum(sum_p * q_below) + 0.5 * np.sum(sum_p * sum_q - sum_pq)
    pairs = p.sum() * q.sum() - np.sum(p * q)
    return float(np.clip(above / pairs, 0.0, 1.0)) if pairs > 0 else float("nan")


def simulated_roc_auc(p: ArrayLike, draws: int, seed: int) -> np.ndarray:
    """ROC-AUC of the ranking by `p` under `draws` outcome sets drawn from `p` itself (what a
    calibrated model would see by chance); NaN for a draw with one class only."""
    p = np.asarray(p, dtype=float)
    ranks = rankdata(p)
    rng = np.random.default_rng(seed)
    return np.array(
        [rank_roc_auc((rng.random(len(p)) < p).astype(float), ranks) for _ in range(draws)]
    )


def days_stale(reference: dict[str, Any], as_of: pd.Timestamp) -> int:
    """Days by which `as_of` lies beyond `trained_through` plus the horizon: the newest outcome
    the model learned from was known then, so 0 means as fresh as a model can be."""
    trained = pd.Timestamp(reference["trained_through"], tz="UTC")
    gap = (as_of - trained).days - int(reference["horizon_days"])
    return max(0, int(gap))


@dataclass(frozen=True)
class BatchHealth:
    """The health of one scored batch: the six metrics, the per-feature table, the features
    that drifted (largest PSI first), the event types missing, whether the score drifted, and
    the batch's row count."""

    metrics: dict[str, float]
    table: pd.DataFrame
    drifted: list[str]
    missing_types: dict[str, float]
    score_drifted: bool
    rows: int


def measure_batch(
    reference: dict[str, Any],
    features: pd.DataFrame,
    p_close: ArrayLike,
    type_counts: pd.Series,
    as_of: pd.Timestamp,
    psi_warn: float,
    alpha: float,
) -> BatchHealth:
    """Every health measure of a batch (`features` of its rows — all of them, or a sample of
    them —, the calibrated `p_close` of all of them, the interactions they were built from
    counted by type) against the model's `reference`. The feature PSIs' chance thresholds are
    for the feature rows given (a sample's chance PSI is larger)."""
    p = np.asarray(p_close, dtype=float)
    table = feature_psi_table(reference, features, psi_warn, alpha)
    score_shares = batch_shares(pd.Series(p), reference["score"])
    score_psi = psi(reference["score"]["shares"], score_shares)
    score_bins = occupied_bins(reference["score"], score_shares)
    score_chance = psi_noise_floor(score_bins, len(p), int(reference["rows"]), alpha)
    score_threshold = max(psi_warn, score_chance, reference["score"]["spread"])
    # The largest PSI among features that can drift (stable in training): track records that
    # grow with time would otherwise set it on every batch.
    psi_values = table.loc[table["unstable"].eq(False), "psi"].dropna()
    metrics = {
        "health_max_feature_psi": float(psi_values.max()) if len(psi_values) else 0.0,
        "health_score_psi": score_psi,
        "health_expected_roc_auc": expected_roc_auc(p),
        "health_expected_wins": float(p.sum()),
        "health_unseen_level_share": unseen_level_share(table),
        "health_days_stale": float(days_stale(reference, as_of)),
        "health_drifted_features": float(table["drifted"].sum()),
    }
    return BatchHealth(
        metrics=metrics,
        table=table,
        drifted=table.loc[table["drifted"], "feature"].tolist(),
        missing_types=missing_event_types(reference, type_counts),
        score_drifted=score_psi > score_threshold,
        rows=len(p),
    )


def health_flags(health: BatchHealth) -> dict[str, Any]:
    """The batch's health as flags for a one-line summary: drift, the features that drifted,
    missing event types, staleness and the headline figures."""
    metrics = health.metrics
    return {
        "drift": bool(health.drifted or health.score_drifted),
        "drifted_features": list(health.drifted),
        "score_drifted": health.score_drifted,
        "missing_event_types": sorted(health.missing_types),
        "unseen_level_share": round(metrics["health_unseen_level_share"], 4),
        "days_stale": int(metrics["health_days_stale"]),
        "max_feature_psi": round(metrics["health_max_feature_psi"], 4),
        "score_psi": round(metrics["health_score_psi"], 4),
        "expected_roc_auc": round(metrics["health_expected_roc_auc"], 4),
        "expected_wins": round(metrics["health_expected_wins"], 2),
    }


def rank_roc_auc(won: np.ndarray, ranks: np.ndarray) -> float:
    """ROC-AUC from the rows' score ranks (`rankdata`, ties averaged): the Mann-Whitney U over
    positives × negatives; NaN with one class only."""
    positives = int(won.sum())
    negatives = len(won) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    return float((ranks[won > 0].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def queue_metrics(
    won: np.ndarray, p: np.ndarray, value: np.ndarray, rank_score: np.ndarray, capacity: int
) -> dict[str, float]:
    """ROC-AUC of `p`, ECE (10 bins) and won value captured at `capacity` by the queue's order
    (`rank_score`), for one set of outcomes `won` (0/1 per row); NaN ROC-AUC with one class."""
    won = np.asarray(won, dtype=float)
    return {
        "roc_auc": rank_roc_auc(won, rankdata(p)),
        "ece": expected_calibration_error(won, p),
        "value_captured": value_captured(
            won * np.nan_to_num(value, nan=0.0), rank_score, np.zeros(len(won)), capacity
        ),
    }


def expected_queue_metrics(
    p: ArrayLike, value: ArrayLike, rank_score: ArrayLike, capacity: int, draws: int, seed: int
) -> pd.DataFrame:
    """`queue_metrics` under `draws` outcome sets drawn from `p` itself: what a calibrated
    model expects of this queue, one row per draw (their mean and percentiles are the
    expectation and its interval)."""
    p = np.asarray(p, dtype=float)
    value = np.nan_to_num(np.asarray(value, dtype=float), nan=0.0)
    rank_score = np.asarray(rank_score, dtype=float)
    ranks, groups = rankdata(p), np.zeros(len(p))
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(draws):
        won = (rng.random(len(p)) < p).astype(float)
        rows.append(
            {
                "roc_auc": rank_roc_auc(won, ranks),
                "ece": expected_calibration_error(won, p),
                "value_captured": value_captured(won * value, rank_score, groups, capacity),
            }
        )
    return pd.DataFrame(rows)


def realised_against_expected(
    won: ArrayLike,
    p: ArrayLike,
    value: ArrayLike,
    rank_score: ArrayLike,
    capacity: int,
    draws: int,
    seed: int,
) -> dict[str, float]:
    """One past queue scored against its outcomes: each of `queue_metrics` realised, expected
    (the mean over draws from `p`) and the expected 95 % interval (`_low`, `_high`); wins
    realised and expected (Σ p)."""
    p = np.asarray(p, dtype=float)
    won = np.asarray(won, dtype=float)
    realised = queue_metrics(won, p, np.asarray(value, float), np.asarray(rank_score), capacity)
    expected = expected_queue_metrics(p, value, rank_score, capacity, draws, seed)
    row: dict[str, float] = {"deals": float(len(p)), "wins": float(won.sum())}
    row["expected_wins"] = float(p.sum())
    for name, figure in realised.items():
        column = expected[name].dropna()
        row[name] = figure
        row[f"expected_{name}"] = float(column.mean()) if len(column) else float("nan")
        row[f"{name}_low"], row[f"{name}_high"] = (
            (float(column.quantile(0.025)), float(column.quantile(0.975)))
            if len(column)
            else (float("nan"), float("nan"))
        )
    return row


def retrain_reason(
    realised_auc: list[float],
    low_auc: list[float],
    misses: int,
    days_stale: float | None,
    max_days_stale: int,
) -> str | None:
    """Why a retrain is due, or None: the realised ROC-AUC fell below its expected interval on
    the last `misses` past queues in a row (oldest first in the lists), or the latest queue's
    model was more than `max_days_stale` days stale."""
    below = [r < lo for r, lo in zip(realised_auc, low_auc, strict=True)]
    if len(below) >= misses and all(below[-misses:]):
        return (
            f"the realised ROC-AUC fell below its expected 95 % interval on the last {misses} "
            "past queues in a row"
        )
    if days_stale is not None and days_stale > max_days_stale:
        return f"the latest queue's model was {days_stale:.0f} days stale (> {max_days_stale})"
    return None
