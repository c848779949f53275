"""Figures a person reads at a glance; returned as matplotlib figures for MLflow to store."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.metrics import reliability_table


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
