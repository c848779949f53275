"""Metrics of probabilistic classification, computed on held-out rows only."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def expected_calibration_error(y_true: ArrayLike, p: ArrayLike, bins: int = 10) -> float:
    """Σ_b (n_b / n) · |mean(y)_b − mean(p)_b| over `bins` equal-width probability bins."""
    y_true, p = np.asarray(y_true, dtype=float), np.asarray(p, dtype=float)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(
        np.bincount(which, weights=y_true, minlength=bins)
        - np.bincount(which, weights=p, minlength=bins)
    )
    return float(gap.sum() / max(count.sum(), 1))


def classification_metrics(y_true: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), log loss, Brier score and ECE (10 bins)."""
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    return {
        "roc_auc": float(roc_auc_score(y_true, p)),
        "pr_auc": float(average_precision_score(y_true, p)),
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, p)),
        "ece": expected_calibration_error(y_true, p),
    }


def reliability_table(y_true: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, np.ndarray]:
    """Per non-empty bin: mean predicted probability, observed rate and row count."""
    y_true, p = np.asarray(y_true, dtype=float), np.asarray(p, dtype=float)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    used = count > 0
    return {
        "predicted": (np.bincount(which, weights=p, minlength=bins)[used] / count[used]),
        "observed": (np.bincount(which, weights=y_true, minlength=bins)[used] / count[used]),
        "count": count[used],
    }
