"""Model health at the edges: the health of every scored batch (measured, said on the
console, logged to the predict run) and `--fail-on-drift`. The measures and the reference
(built by `train`) are pure: models/health.py; docs/model-health.md explains them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from closeprob.models.classifier import CloseModel
from closeprob.models.health import (
    BatchHealth,
    batch_type_counts,
    health_window_days,
    measure_batch,
    unusable_reference,
)
from closeprob.pipeline.config import HealthConfig
from closeprob.pipeline.errors import DriftDetected

if TYPE_CHECKING:
    from closeprob.pipeline.core import Dataset

log = logging.getLogger(__name__)
SHOWN_FEATURES = 5  # features named in the drift warning
CHART_FEATURES = 25


def measure_health(
    dataset: Dataset,
    model: CloseModel,
    features: pd.DataFrame,
    queue: pd.DataFrame,
    as_of: pd.Timestamp,
    config: HealthConfig,
) -> BatchHealth | None:
    """The batch's health against the model's reference; None for a model trained before
    references were stored (said on the console)."""
    unusable = unusable_reference(model.reference)
    if unusable is not None or model.reference is None:
        log.info(f"health: not measured ({unusable})")
        return None
    days = health_window_days(model.spec.windows_days)
    counts = batch_type_counts(dataset.interactions, features["deal_id"], as_of, days)
    return measure_batch(
        model.reference,
        features,
        queue["p_close"].to_numpy(),
        counts,
        as_of,
        config.psi_warn,
        config.noise_alpha,
    )


def drift_message(health: BatchHealth, psi_warn: float) -> str | None:
    """The warning for a batch that drifted, naming the features by PSI, the score and the
    missing event types; None when nothing drifted."""
    parts = []
    if health.drifted:
        psi = health.table.set_index("feature")["psi"]
        named = ", ".join(f"{f} (PSI {psi[f]:.2f})" for f in health.drifted[:SHOWN_FEATURES])
        more = len(health.drifted) - SHOWN_FEATURES
        parts.append(
            f"{len(health.drifted)} feature{'s' if len(health.drifted) > 1 else ''} moved "
            f"away from the training rows (PSI above "
            f"{psi_warn:g}, above chance for {health.rows:,} deals and above the spread of "
            f"the training's own dates): {named}" + (f" and {more} more" if more > 0 else "")
        )
    if health.score_drifted:
        parts.append(
            f"the score's distribution moved (PSI {health.metrics['health_score_psi']:.2f})"
        )
    if health.missing_types:
        shown = ", ".join(
            f"{name!r} ({share:.0%} of training events)"
            for name, share in health.missing_types.items()
        )
        parts.append(f"event types the model learned from are missing: {shown}")
    if not parts:
        return None
    return (
        "drift: "
        + "; ".join(parts)
        + ". The model is scoring data unlike its training rows: check the export (renamed "
        "levels or types, a gap in logging) or retrain; the table is health/feature_psi.json "
        "in the predict run"
    )


def health_line(health: BatchHealth) -> str:
    """One console line with the headline figures."""
    m = health.metrics
    return (
        f"health: expected ROC-AUC {m['health_expected_roc_auc']:.3f}, expected wins "
        f"{m['health_expected_wins']:.1f}, max feature PSI {m['health_max_feature_psi']:.3f}, "
        f"score PSI {m['health_score_psi']:.3f}, unseen levels "
        f"{m['health_unseen_level_share']:.1%}, {int(m['health_days_stale'])} days stale"
    )


def report_health(health: BatchHealth | None, config: HealthConfig, fail_on_drift: bool) -> None:
    """Say the batch's health (stdout) and any drift (a warning); with `fail_on_drift`, raise
    DriftDetected after saying it (the caller has written the queue already)."""
    if health is None:
        return
    log.info(health_line(health))
    message = drift_message(health, config.psi_warn)
    if message is None:
        return
    log.warning(message)
    if fail_on_drift:
        raise DriftDetected(message)


def health_figure(table: pd.DataFrame, psi_warn: float) -> Figure:
    """Horizontal bars of the largest feature PSIs with each one's threshold (the largest of
    `psi_warn`, the chance PSI of the batch's size and the feature's training spread)."""
    shown = table.dropna(subset=["psi"]).head(CHART_FEATURES).iloc[::-1]
    figure, axes = plt.subplots(figsize=(7, 0.28 * len(shown) + 1.4))
    unstable = shown["unstable"].fillna(False).astype(bool)
    colours = np.where(shown["drifted"], "tab:red", np.where(unstable, "lightgrey", "tab:blue"))
    axes.barh(shown["feature"], shown["psi"], color=colours)
    axes.scatter(
        shown["threshold"], shown["feature"], marker="|", color="black", s=80, label="threshold"
    )
    axes.axvline(psi_warn, color="grey", linestyle="--", label=f"health.psi_warn = {psi_warn:g}")
    axes.set_xlabel("PSI against the training rows")
    axes.set_title("Feature drift of this batch (red: drifted; grey: unstable in training)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    return figure


def log_health(health: BatchHealth, psi_warn: float) -> None:
    """The six health metrics, the per-feature table and its chart, into the active run."""
    mlflow.log_metrics(health.metrics)
    mlflow.set_tag("health_drift", str(bool(health.drifted or health.score_drifted)).lower())
    table = health.table.astype({"drifted": bool})
    mlflow.log_table(table, "health/feature_psi.json")
    figure = health_figure(table, psi_warn)
    mlflow.log_figure(figure, "health/feature_psi.png")
    plt.close(figure)
