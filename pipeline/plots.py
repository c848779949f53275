"""Figures a person reads at a glance; returned as matplotlib figures for MLflow to store."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from closeprob.models.metrics import reliability_table


def reliability_figure(y_true: np.ndarray, curves: dict[str, np.ndarray], title: str) -> Figure:
    """Predicted vs observed win rate per probability bin, one line per named score."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6, 7), height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for name, p in curves.items():
        table = reliability_table(y_true, p)
        top.plot(table["predicted"], table["observed"], marker="o", label=name)
        bottom.hist(p, bins=20, range=(0, 1), histtype="step", label=name)
    top.set_ylabel("observed win rate")
    top.set_title(title)
    top.legend(loc="upper left")
    bottom.set_xlabel("predicted close probability")
    bottom.set_ylabel("rows")
    figure.tight_layout()
    return figure


def importance_figure(importance: pd.Series, top_n: int = 25) -> Figure:
    """Horizontal bars of the `top_n` features by total gain."""
    shown = importance.sort_values(ascending=True).tail(top_n)
    figure, axes = plt.subplots(figsize=(7, 0.28 * len(shown) + 1.2))
    axes.barh(shown.index, shown.to_numpy())
    axes.set_xlabel("total gain (LightGBM)")
    axes.set_title("Feature importance")
    figure.tight_layout()
    return figure


def gain_figure(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """Cumulative gain: share of all wins found when working the top x % of rows, per policy."""
    figure, (gain, lift) = plt.subplots(1, 2, figsize=(11, 4.5))
    y = np.asarray(y_true, dtype=float)
    share = np.arange(1, len(y) + 1) / len(y)
    for name, score in scores.items():
        found = np.cumsum(y[np.argsort(-np.asarray(score), kind="stable")]) / max(y.sum(), 1.0)
        gain.plot(share, found, label=name)
        lift.plot(share, found / share, label=name)
    gain.plot([0, 1], [0, 1], color="grey", linestyle="--", label="random")
    lift.axhline(1.0, color="grey", linestyle="--")
    gain.set(
        xlabel="share of rows worked (by score)",
        ylabel="share of wins found",
        title="Cumulative gain",
    )
    lift.set(xlabel="share of rows worked (by score)", ylabel="lift", title="Lift", ylim=(0, None))
    gain.legend(loc="lower right")
    figure.tight_layout()
    return figure


def value_captured_figure(
    curves: dict[str, np.ndarray], capacities: np.ndarray, marked: int
) -> Figure:
    """Won value captured (vs perfect hindsight) as a function of queue capacity, per policy."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, captured in curves.items():
        axes.plot(capacities, captured, label=name)
    axes.axvline(marked, color="grey", linestyle=":", label=f"configured capacity ({marked})")
    axes.set(
        xlabel="deals worked per queue (capacity)",
        ylabel="won value captured / hindsight",
        title="Won value captured at capacity",
        ylim=(0, 1.02),
    )
    axes.legend(loc="lower right")
    figure.tight_layout()
    return figure


def score_histogram_figure(y_true: np.ndarray, p: np.ndarray) -> Figure:
    """Predicted probability for rows that were won within the horizon and rows that were not."""
    figure, axes = plt.subplots(figsize=(7, 4))
    y = np.asarray(y_true).astype(bool)
    bins = [i / 40 for i in range(41)]
    axes.hist(p[~y], bins=bins, alpha=0.6, density=True, label=f"not won ({(~y).sum():,})")
    axes.hist(p[y], bins=bins, alpha=0.6, density=True, label=f"won ({y.sum():,})")
    axes.set(
        xlabel="predicted close probability", ylabel="density", title="Scores by outcome (test)"
    )
    axes.legend()
    figure.tight_layout()
    return figure


def backtest_figure(weeks: pd.DataFrame, policies: tuple[str, ...]) -> Figure:
    """Won value captured at capacity per week and policy, and tier churn."""
    figure, (captured, churn) = plt.subplots(
        2, 1, figsize=(8, 6.5), height_ratios=(3, 1), sharex=True
    )
    for name in policies:
        captured.plot(weeks["as_of"], weeks[f"captured_{name}"], marker="o", label=name)
    captured.set(
        ylabel="won value captured / hindsight", title="Backtest: weekly queues", ylim=(0, 1.02)
    )
    captured.legend(loc="lower left")
    churn.bar(weeks["as_of"], weeks["tier_churn"], width=4)
    churn.set(ylabel="tier churn", xlabel="as_of")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure
