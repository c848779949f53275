"""The champion/challenger rule: promote only what is better where it matters, and not worse."""

from __future__ import annotations

import math
from dataclasses import dataclass

# The test metrics training logs for the model where higher is better (`test_` + the names of
# models/metrics.py's classification_metrics and ranking_metrics, less log loss, Brier and ECE):
# the choices of `evaluation.primary_metric`. Written out so that loading a config does not
# import scikit-learn; tests/models/test_promotion.py checks it against those functions.
PROMOTABLE_METRICS = (
    "test_roc_auc",
    "test_pr_auc",
    "test_precision_at_10pct",
    "test_lift_at_10pct",
    "test_precision_at_capacity",
    "test_lift_at_capacity",
    "test_value_captured_at_capacity",
)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide_promotion(
    challenger: dict[str, float],
    champion: dict[str, float],
    primary_metric: str,
    log_loss_tolerance: float,
    loss_metric: str = "test_log_loss",
) -> Decision:
    """Promote if the challenger is strictly better on `primary_metric` (higher is better) and
    its log loss (`loss_metric`) is at most `log_loss_tolerance` above the champion's."""
    new, old = challenger[primary_metric], champion[primary_metric]
    new_loss, old_loss = challenger[loss_metric], champion[loss_metric]
    if math.isnan(new) or math.isnan(old):
        # e.g. no deal values at all: value captured is undefined; log loss decides alone.
        better = new_loss < old_loss
        return Decision(
            better,
            f"{primary_metric} is undefined on this data; {loss_metric} {new_loss:.4f} "
            f"{'<' if better else '>='} the champion's {old_loss:.4f}",
        )
    if not new > old:
        return Decision(
            False, f"{primary_metric} {new:.4f} is not better than the champion's {old:.4f}"
        )
    if new_loss > old_loss + log_loss_tolerance:
        return Decision(
            False,
            f"{primary_metric} improves ({new:.4f} > {old:.4f}) but {loss_metric} {new_loss:.4f} "
            f"is worse than the champion's {old_loss:.4f} by more than {log_loss_tolerance}",
        )
    return Decision(
        True,
        f"{primary_metric} {new:.4f} > {old:.4f} and {loss_metric} {new_loss:.4f} within "
        f"{log_loss_tolerance} of {old_loss:.4f}",
    )


def implausible_reason(metrics: dict[str, float], max_plausible_auc: float) -> str | None:
    """Why a test ROC-AUC is too good to believe (a label leak, most likely), or None.

    At or above the oracle's (the generator's true probabilities, the best any model can do)
    or above `max_plausible_auc`.
    """
    auc = metrics["test_roc_auc"]
    oracle = metrics.get("test_oracle_roc_auc")
    if oracle is not None and auc >= oracle:
        return (
            f"test ROC-AUC {auc:.4f} is at or above the oracle's {oracle:.4f} (the true "
            "probabilities): no honest model gets there; look for a label leak in data.attributes"
        )
    if auc > max_plausible_auc:
        return (
            f"test ROC-AUC {auc:.4f} is above evaluation.max_plausible_auc {max_plausible_auc}: "
            "too good to be true for close prediction; look for a column set at or after the "
            "close (data.attributes), or raise the limit if this is genuine"
        )
    return None


def untrusted_reason(terms: int, auc_low: float, auc: float) -> str | None:
    """Why a model must not be registered, or None: it is a constant (`terms`, its booster
    splits plus varying linear terms, counting only parts with a non-zero blend weight, is 0),
    or its test ROC-AUC is not above 0.5 by more than its own uncertainty (95 % interval's
    low end)."""
    if terms == 0:
        return (
            "the fitted model is a constant (the booster makes no split and no linear term "
            "varies): every deal gets the same probability"
        )
    if not auc_low > 0.5:
        return (
            f"test ROC-AUC {auc:.4f} has a 95 % interval reaching {auc_low:.4f}: not "
            "distinguishable from ranking at random"
        )
    return None
