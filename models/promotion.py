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
) -> Decision:
    """Promote if the challenger is strictly better on `primary_metric` (higher is better) and
    its test log loss is at most `log_loss_tolerance` above the champion's."""
    new, old = challenger[primary_metric], champion[primary_metric]
    new_loss, old_loss = challenger["test_log_loss"], champion["test_log_loss"]
    if math.isnan(new) or math.isnan(old):
        # e.g. no deal values at all: value captured is undefined; log loss decides alone.
        better = new_loss < old_loss
        return Decision(
            better,
            f"{primary_metric} is undefined on this data; test_log_loss {new_loss:.4f} "
            f"{'<' if better else '>='} the champion's {old_loss:.4f}",
        )
    if not new > old:
        return Decision(
            False, f"{primary_metric} {new:.4f} is not better than the champion's {old:.4f}"
        )
    if new_loss > old_loss + log_loss_tolerance:
        return Decision(
            False,
            f"{primary_metric} improves ({new:.4f} > {old:.4f}) but test_log_loss {new_loss:.4f} "
            f"is worse than the champion's {old_loss:.4f} by more than {log_loss_tolerance}",
        )
    return Decision(
        True,
        f"{primary_metric} {new:.4f} > {old:.4f} and test_log_loss {new_loss:.4f} within "
        f"{log_loss_tolerance} of {old_loss:.4f}",
    )
