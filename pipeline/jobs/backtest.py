"""Backtest: for each past week, train on what was known then, build the queue as the batch
job does, and score it against what happened in the following horizon."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from closeprob.features.build import build_features
from closeprob.features.point_in_time import data_end, last_labelled_as_of, won_within
from closeprob.models.base_rate import recent_won_rate
from closeprob.models.baselines import rfm_scores
from closeprob.models.metrics import (
    calibration_intercept_slope,
    classification_metrics,
    ece_noise_floor,
    expected_calibration_error,
    value_captured,
)
from closeprob.models.yardsticks import (
    base_rate_gap,
    pooled_chance_spread,
    yardsticks_with_intervals,
)
from closeprob.pipeline.account_values import clv_queue_scores
from closeprob.pipeline.config import Config
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.dataset import known_at, load_job_data
from closeprob.pipeline.evaluation import declared_row_values
from closeprob.pipeline.oracle import oracle_close_probability
from closeprob.pipeline.plots import backtest_figure
from closeprob.pipeline.progress import stage
from closeprob.pipeline.registry import LoadedModel
from closeprob.pipeline.runs import log_backtest_run
from closeprob.pipeline.scoring import build_queue
from closeprob.pipeline.training import train_close_model

log = logging.getLogger(__name__)

POLICIES = ("p_x_value", "p_only", "value_only", "rfm")
# How right the queue's p_close were, each week: the figures multiplied by money.
CALIBRATION = ("ece", "log_loss", "brier", "calibration_intercept", "calibration_slope")
# What the week's rows allow: a calibrated forecaster's chance ECE with these p_close, and
# (built-in data) the generator's true probabilities scored like the queue.
# The base-rate check: the won rate of deals open at the last dates whose horizon had ended by
# as_of (known then), and the queue's mean p_close minus it.
REFERENCES = ("ece_floor", "oracle_ece", "oracle_mean_p", "recent_won_rate", "base_rate_gap")


def backtest_dates(dataset: Dataset, weeks: int, horizon_days: int) -> pd.DatetimeIndex:
    """The last `weeks` weekly dates whose following horizon lies inside the data."""
    end = data_end(dataset.deals, dataset.interactions)
    last = last_labelled_as_of(end, horizon_days).floor("D")
    return pd.DatetimeIndex([last - pd.Timedelta(weeks=k) for k in range(weeks - 1, -1, -1)])


def won_in_horizon(
    deals: pd.DataFrame, deal_ids: pd.Series, as_of: pd.Timestamp, horizon_days: int
) -> np.ndarray:
    """1 where the deal was won in [as_of, as_of + horizon), from the full (later) data."""
    rows = deals.set_index("deal_id").loc[deal_ids.to_numpy()]
    won = won_within(rows["outcome"], rows["closed_at"], as_of, horizon_days)
    return won.to_numpy(dtype=float)


@dataclass(frozen=True)
class WeekResult:
    as_of: pd.Timestamp
    open_deals: int
    won_deals: int
    mean_p_close: float
    captured: dict[str, float]
    calibration: dict[str, float]
    references: dict[str, float]
    tiers: pd.Series
    rows: pd.DataFrame  # per queued deal: p_close, won, oracle (NaN without a truth file)


@dataclass(frozen=True)
class Backtest:
    """The weekly table, and the calibration of every week's queue rows pooled (a deal open in
    several weeks counts once per week, so these rows are not independent)."""

    weeks: pd.DataFrame
    pooled: dict[str, float]


def evaluate_week(
    dataset: Dataset, loaded: LoadedModel, as_of: pd.Timestamp, config: Config
) -> WeekResult:
    """The batch job's queue at `as_of`, and each policy's won value captured at capacity."""
    past = known_at(dataset, as_of)
    queue = build_queue(past, loaded, as_of, config.ranking, config.predict.chunk_rows, None)
    # Rows in deal_id order: baselines' ties (RFM sums are small integers) must not be broken
    # by the model's own ranking, which is the queue's order.
    queue = queue.sort_values("deal_id", kind="stable").reset_index(drop=True)
    won = won_in_horizon(dataset.deals, queue["deal_id"], as_of, config.snapshots.horizon_days)
    value = queue["deal_value"].to_numpy(dtype=float)
    # Scored with declared amounts only: an estimate ranks, it never counts as value won.
    declared = declared_row_values(dataset.deals, queue["deal_id"])
    won_value = won if np.isnan(declared).all() else won * np.nan_to_num(declared, nan=0.0)
    features = build_features(
        past.deals, past.interactions, queue[["deal_id", "as_of"]], loaded.close.spec
    )
    scores = {
        "p_x_value": -queue["rank"].to_numpy(dtype=float),
        "p_only": queue["p_close"].to_numpy(),
        "value_only": np.nan_to_num(value, nan=0.0),
        "rfm": rfm_scores(features, value, pd.Series(0, index=features.index)),
    } | clv_queue_scores(past.deals, queue, as_of, config.value)
    group = np.zeros(len(queue))
    capacity = config.evaluation.capacity
    p_close = queue["p_close"].to_numpy(dtype=float)
    both = 0 < won.sum() < len(won)
    calibration = {
        k: v
        for k, v in (classification_metrics(won, p_close) if both else {}).items()
        if k in CALIBRATION
    } | calibration_intercept_slope(won, p_close)
    oracle = oracle_p(dataset, queue["deal_id"], as_of, config.snapshots.horizon_days)
    recent, _ = recent_won_rate(
        past.deals, as_of, config.snapshots.horizon_days, config.snapshots.every_days
    )
    return WeekResult(
        references=week_references(won, p_close, oracle, config.seed)
        | {"recent_won_rate": recent, "base_rate_gap": base_rate_gap(p_close, recent)},
        rows=pd.DataFrame(
            {"deal_id": queue["deal_id"], "p_close": p_close, "won": won, "oracle": oracle}
        ),
        as_of=as_of,
        open_deals=len(queue),
        won_deals=int(won.sum()),
        mean_p_close=float(p_close.mean()),
        captured={
            name: value_captured(won_value, score, group, capacity)
            for name, score in scores.items()
        },
        calibration={name: calibration.get(name, float("nan")) for name in CALIBRATION},
        tiers=queue.set_index("deal_id")["tier"],
    )


def oracle_p(
    dataset: Dataset, deal_ids: pd.Series, as_of: pd.Timestamp, horizon_days: int
) -> np.ndarray:
    """The generator's true P(won within the horizon) per queued deal (the built-in data's
    truth file); NaN without one."""
    if dataset.truth is None:
        return np.full(len(deal_ids), np.nan)

    rows = pd.DataFrame({"deal_id": deal_ids.to_numpy(), "as_of": as_of})
    return oracle_close_probability(dataset.truth, rows, dataset.deals, horizon_days).to_numpy()


def week_references(
    won: np.ndarray, p_close: np.ndarray, oracle: np.ndarray, seed: int
) -> dict[str, float]:
    """ece_floor: the ECE a calibrated forecaster with these p_close scores by chance; the
    oracle's ECE and mean (NaN without a truth file)."""
    known = not np.isnan(oracle).any() and len(oracle) > 0
    return {
        "ece_floor": ece_noise_floor(p_close, seed=seed),
        "oracle_ece": expected_calibration_error(won, oracle) if known else float("nan"),
        "oracle_mean_p": float(oracle.mean()) if known else float("nan"),
    }


def pooled_calibration(rows: pd.DataFrame, seed: int, resamples: int = 200) -> dict[str, float]:
    """ECE, its chance floor and the oracle's ECE over every week's queue rows together; and
    the proper scores, intercept, slope and equal-mass ECE with intervals from a bootstrap of
    deals (a deal queued in several weeks is drawn with all its weeks), and on the built-in
    data the distance to the true probabilities (`truth_*`)."""
    won, p_close = rows["won"].to_numpy(), rows["p_close"].to_numpy()
    oracle = rows["oracle"].to_numpy()
    references = week_references(won, p_close, oracle, seed)
    return {
        "rows": float(len(rows)),
        "ece": expected_calibration_error(won, p_close),
        "ece_floor": references["ece_floor"],
        "oracle_ece": references["oracle_ece"],
    } | (
        yardsticks_with_intervals(won, p_close, rows["deal_id"].to_numpy(), resamples, seed, oracle)
        | pooled_chance_spread(p_close, rows["deal_id"].to_numpy(), resamples // 2, seed)
    )


def tier_churn(before: pd.Series, after: pd.Series) -> float:
    """Share of deals in both queues whose tier changed from one week to the next."""
    both = before.index.intersection(after.index)
    return float((before.loc[both] != after.loc[both]).mean()) if len(both) else float("nan")


def run_backtest(dataset: Dataset, config: Config, weeks: int, retrain_every: int) -> Backtest:
    """One row per week: open deals, wins, value captured per policy, calibration, tier churn;
    and the calibration of all weeks' rows pooled."""
    if weeks < 1 or retrain_every < 1:
        raise ValueError(f"weeks ({weeks}) and retrain_every ({retrain_every}) must be ≥ 1")
    retrain_config = config.model_copy(update={"split": config.backtest.split})
    rows = []
    queued: list[pd.DataFrame] = []
    loaded: LoadedModel | None = None
    previous: pd.Series | None = None
    dates = backtest_dates(dataset, weeks, config.snapshots.horizon_days)
    for index, as_of in enumerate(dates):
        with stage(f"backtest week {index + 1}/{len(dates)} (as_of {as_of.date()})"):
            if loaded is None or index % retrain_every == 0:
                result = train_close_model(known_at(dataset, as_of), retrain_config)
                loaded = LoadedModel(
                    close=result.model,
                    value=result.value_model,
                    uri="backtest",
                    version=f"week {index + 1}",
                )
            week = evaluate_week(dataset, loaded, as_of, config)
        rows.append(
            {
                "as_of": as_of.date(),
                "model": loaded.version,
                "open_deals": week.open_deals,
                "won_in_horizon": week.won_deals,
                **{f"captured_{name}": captured for name, captured in week.captured.items()},
                "mean_p_close": week.mean_p_close,
                **week.calibration,
                **week.references,
                "tier_churn": tier_churn(previous, week.tiers) if previous is not None else np.nan,
            }
        )
        previous = week.tiers
        queued.append(week.rows)
    pooled = pooled_calibration(
        pd.concat(queued), config.seed, config.evaluation.bootstrap_resamples
    )
    return Backtest(pd.DataFrame(rows), pooled)


def run_backtest_job(config: Config, weeks: int, retrain_every: int) -> None:
    """The `backtest` job: the weekly table, logged as one MLflow run and printed."""

    dataset = load_job_data(config)
    backtest = run_backtest(dataset, config, weeks, retrain_every)
    table = backtest.weeks
    columns = [c for c in table.columns if c.startswith("captured_")]
    columns += ["tier_churn", "mean_p_close"]
    columns += list(CALIBRATION) + list(REFERENCES)
    figure = backtest_figure(table, POLICIES)
    pooled = backtest.pooled
    run_id = log_backtest_run(table, columns, pooled, figure, config, max(retrain_every, 1))
    log.info(
        f"\nBacktest, capacity {config.evaluation.capacity} deals per weekly queue "
        "(won value captured / perfect hindsight):\n"
    )
    log.info(table.to_string(index=False, float_format="{:.3f}".format))
    means = table.filter(like="captured_").mean()
    log.info(
        "\nmean: "
        + ", ".join(f"{str(k).removeprefix('captured_')} {v:.3f}" for k, v in means.items())
    )
    log.info(
        "mean calibration of the queue's p_close against what happened: "
        + ", ".join(f"{name} {table[name].mean():.3f}" for name in CALIBRATION)
        + f" (won rate {(table['won_in_horizon'] / table['open_deals']).mean():.3f}, "
        f"mean p_close {table['mean_p_close'].mean():.3f})"
    )
    log.info(
        f"ECE a perfectly calibrated queue scores by chance on these rows: "
        f"{table['ece_floor'].mean():.3f}"
        + (
            f"; the generator's true probabilities: ECE {table['oracle_ece'].mean():.3f}, "
            f"mean {table['oracle_mean_p'].mean():.3f}"
            if table["oracle_ece"].notna().any()
            else ""
        )
    )
    log.info(
        f"all {int(pooled['rows']):,} queue rows pooled: ECE {pooled['ece']:.3f}, chance floor "
        f"{pooled['ece_floor']:.3f} with rows independent, {pooled['ece_floor_by_deal']:.3f} "
        "with a deal's weeks one outcome"
        + (
            f", true probabilities {pooled['oracle_ece']:.3f}"
            if not np.isnan(pooled["oracle_ece"])
            else ""
        )
    )
    log.info(
        "a perfectly calibrated queue pooled over these weeks scores by chance (a deal's weeks "
        f"one outcome, 95 %): intercept {pooled['chance_intercept_lo']:+.3f} to "
        f"{pooled['chance_intercept_hi']:+.3f}, slope {pooled['chance_slope_lo']:.2f} to "
        f"{pooled['chance_slope_hi']:.2f}"
    )
    log.info(pooled_summary(pooled))
    log.info(
        f"base-rate check: mean p_close minus the recent won rate (known at each as_of) "
        f"{table['base_rate_gap'].mean():+.3f} on average "
        f"({table['base_rate_gap'].min():+.3f} to {table['base_rate_gap'].max():+.3f})"
    )
    log.info(f"mean tier churn {table['tier_churn'].mean():.3f}; MLflow run {run_id}")


def pooled_summary(pooled: dict[str, float]) -> str:
    """The pooled yardsticks in one line, each with its deal-bootstrap interval."""

    def shown(name: str, spec: str) -> str:
        low, high = pooled[f"{name}_lo"], pooled[f"{name}_hi"]
        return f"{name} {pooled[name]:{spec}} [{low:{spec}}, {high:{spec}}]"

    line = "pooled, 95 % intervals over deals: " + ", ".join(
        shown(name, spec)
        for name, spec in (
            ("intercept", "+.3f"),
            ("slope", ".2f"),
            ("log_loss", ".4f"),
            ("brier", ".4f"),
            ("reliability", ".4f"),
            ("resolution", ".4f"),
            ("ece_equal_mass", ".3f"),
        )
    )
    if "truth_mae" in pooled:
        line += (
            f"; distance to the true probabilities: mean |p − truth| {pooled['truth_mae']:.4f}, "
            f"RMSE {pooled['truth_rmse']:.4f} (the truth's log loss {pooled['truth_log_loss']:.4f})"
        )
    return line
