"""Account lifetime value in the evaluation: each snapshot row's account CLV at its `as_of`, and
value captured by each value source (the deal's value alone, or plus its account's CLV)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.models.account_value import (
    ACCOUNT_COLUMNS,
    account_values_for_rows,
    realised_account_value,
)
from closeprob.models.baselines import fit_score_map, map_scores
from closeprob.models.metrics import value_captured
from closeprob.pipeline.config import ValueConfig
from closeprob.pipeline.errors import DataContractError


def has_accounts(deals: pd.DataFrame) -> bool:
    """True when some account has two deals or more (repeat business to value)."""
    return "account_id" in deals.columns and bool(deals["account_id"].dropna().duplicated().any())


def row_account_values(deals: pd.DataFrame, rows: pd.DataFrame, value: ValueConfig) -> pd.DataFrame:
    """ACCOUNT_COLUMNS per snapshot row (NaN everywhere for data without repeat accounts)."""
    if not has_accounts(deals):
        return pd.DataFrame(np.nan, index=rows.index, columns=ACCOUNT_COLUMNS)
    return account_values_for_rows(
        deals,
        rows,
        value.clv_horizon_days,
        value.clv_annual_discount_rate,
        value.clv_min_accounts,
    )


def value_source_metrics(
    deals: pd.DataFrame,
    rows: pd.DataFrame,
    labels: np.ndarray,
    p_close: np.ndarray,
    deal_value: np.ndarray,
    value: ValueConfig,
    capacity: int,
) -> dict[str, float]:
    """Value captured at capacity by the queue ranked by p × deal value and by p × (deal value +
    account CLV), each scored on two truths: the deal's own won value, and that plus its
    account's other wins within `value.clv_horizon_days` (what CLV tries to predict).

    Empty for data without repeat accounts."""
    if not has_accounts(deals):
        return {}
    clv = row_account_values(deals, rows, value)["account_clv"].to_numpy(dtype=float)
    own = np.nan_to_num(deal_value, nan=0.0)
    follow_on = realised_account_value(deals, rows, value.clv_horizon_days)
    won = labels * own
    groups = rows["as_of"].to_numpy()
    scores = {"deal": p_close * own, "clv": p_close * (own + np.nan_to_num(clv, nan=0.0))}
    truths = {"deal_won": won, "account_won": won + follow_on}
    metrics = {
        f"test_value_captured_at_capacity_{source}_on_{truth}": value_captured(
            truth_value, score, groups, capacity
        )
        for source, score in scores.items()
        for truth, truth_value in truths.items()
    }
    metrics["test_clv_row_share"] = float(np.isfinite(clv).mean()) if len(clv) else float("nan")
    return metrics


def queue_account_clv(
    deals: pd.DataFrame, deal_ids: pd.Series, as_of: pd.Timestamp, value: ValueConfig, source: str
) -> np.ndarray:
    """The account CLV of each queue deal at `as_of` (NaN where its account has none).

    `source` names the file for the error raised when the data hold no repeat accounts: a
    CLV-valued queue would silently be a deal-valued one."""
    if not has_accounts(deals):
        raise DataContractError(
            f"{source}: value.source: clv / ranking.tier_by: account_clv need accounts with more "
            "than one deal (column 'account_id'), and no account_id repeats"
            + ("" if "account_id" in deals.columns else " (the column is absent)")
            + ". Set value.source: deal and ranking.tier_by: expected_value, or map your "
            "account column to account_id (data.columns)"
        )
    rows = pd.DataFrame({"deal_id": deal_ids.to_numpy(), "as_of": as_of})
    clv = row_account_values(deals, rows, value)["account_clv"]
    return clv.to_numpy(dtype=float)


def clv_baseline(
    deals: pd.DataFrame,
    features: pd.DataFrame,
    calibration: np.ndarray,
    test: np.ndarray,
    calibration_labels: np.ndarray,
    value: ValueConfig,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The CLV baseline of `make compare`: test rows ranked by their account's expected
    purchases over `value.clv_horizon_days` (0 without one), mapped to a probability on the
    calibration rows as the RFM baseline is. (p_close, queue score) of the test rows; None for
    data without repeat accounts."""
    if not has_accounts(deals):
        return None
    rows = features.loc[calibration | test, ["deal_id", "as_of"]]
    purchases = row_account_values(deals, rows, value)["account_expected_purchases"]
    score = pd.Series(0.0, index=features.index)
    score.loc[rows.index] = purchases.fillna(0.0).to_numpy()
    score_map = fit_score_map(score[calibration].to_numpy(), calibration_labels)
    test_score = score[test].to_numpy()
    return map_scores(score_map, test_score), test_score


def clv_queue_scores(
    deals: pd.DataFrame, queue: pd.DataFrame, as_of: pd.Timestamp, value: ValueConfig
) -> dict[str, np.ndarray]:
    """The backtest's CLV policy: a deal-valued queue re-ranked by p_close x (deal value +
    account CLV at `as_of`, from `deals` closed before it). Empty without repeat accounts."""
    if not has_accounts(deals):
        return {}
    clv = queue_account_clv(deals, queue["deal_id"], as_of, value, "deals")
    own = np.nan_to_num(queue["deal_value"].to_numpy(dtype=float), nan=0.0)
    p_close = queue["p_close"].to_numpy(dtype=float)
    return {"p_x_clv_value": p_close * (own + np.nan_to_num(clv, nan=0.0))}


def value_source_summary(metrics: dict[str, float], capacity: int) -> str | None:
    """The evaluation's value-source figures as two lines for the terminal (None without)."""
    key = "test_value_captured_at_capacity_{}_on_{}"
    if key.format("clv", "deal_won") not in metrics:
        return None
    lines = [f"\nValue captured at capacity {capacity} by value source (model's p_close):"]
    for truth, what in (("deal_won", "won deal value"), ("account_won", "+ account's later wins")):
        deal, clv = (metrics[key.format(source, truth)] for source in ("deal", "clv"))
        lines.append(f"  on {what}: deal value {deal:.4f}, deal value + account CLV {clv:.4f}")
    return "\n".join(lines)
