"""The queue as people read it: the deal's own columns beside its id (`predict.columns`: deal
name, stage, forecast close date, owner name…) and, in the CSV, p_close and money rounded
(the score table and a Parquet queue keep full precision)."""

from __future__ import annotations

import pandas as pd

P_DECIMALS = 3  # 0.402: a tenth of a percentage point
MONEY_DECIMALS = 0  # whole currency units
ROUNDED = {
    "p_close": P_DECIMALS,
    "p_close_change": P_DECIMALS,
    "deal_value": MONEY_DECIMALS,
    "expected_value": MONEY_DECIMALS,
}


def with_deal_columns(queue: pd.DataFrame, deals: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The queue with `columns` of each row's deal inserted after `deal_id` (as the deals
    table has them; a column already in the queue is not repeated)."""
    wanted = [c for c in columns if c not in queue.columns]
    if not wanted:
        return queue
    by_deal = deals.drop_duplicates("deal_id").set_index("deal_id")[wanted]
    values = by_deal.reindex(queue["deal_id"]).reset_index(drop=True)
    values.index = queue.index
    at = list(queue.columns).index("deal_id") + 1
    order = [*queue.columns[:at], *wanted, *queue.columns[at:]]
    return pd.concat([queue, values], axis=1)[order]


def rounded_for_people(queue: pd.DataFrame) -> pd.DataFrame:
    """p_close (and its change) to 3 decimals, deal value and expected value to whole units;
    other columns as they are."""
    present = {c: d for c, d in ROUNDED.items() if c in queue.columns}
    rounded = {c: queue[c].astype(float).round(d) for c, d in present.items()}
    # Whole money as whole numbers (152503, not 152503.0); missing values stay missing.
    whole = {c: v.astype("Int64") for c, v in rounded.items() if present[c] == 0}
    if "rank_change" in queue.columns:  # places: whole numbers, missing for a new deal
        whole["rank_change"] = pd.to_numeric(queue["rank_change"]).round().astype("Int64")
    return queue.assign(**(rounded | whole))
