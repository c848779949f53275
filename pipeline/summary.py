"""What a scheduler and a sales manager read after a `predict`: the one-line JSON summary (the
last line on stdout) and the change summary (deals new to A, dropped from A, biggest movers).

`run_summary` builds the summary as a dict in one place; other parts of the job (the health
checks) hand it their flags through `flags`, which appear under "flags" when there are any.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd

TIERS = ("A", "B", "C")
MOVER_MIN = 0.005


def run_summary(
    queue: pd.DataFrame,
    outputs: Mapping[str, str],
    run_id: str,
    flags: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """as_of, model version, rows, deals per tier, tier changes, outputs written, the MLflow
    run, and `flags` (e.g. health warnings) when given."""
    changes = queue["tier_change"].fillna("").astype(str)
    summary: dict[str, object] = {
        "as_of": pd.Timestamp(queue["as_of"].iloc[0]).isoformat(),
        "model_version": str(queue["model_version"].iloc[0]),
        "rows": len(queue),
        "tiers": {tier: int((queue["tier"] == tier).sum()) for tier in TIERS},
        "tier_changes": int(changes.str.contains("→").sum()),
        "new_deals": int((changes == "new").sum()),
        "outputs": dict(outputs),
        "mlflow_run_id": run_id,
    }
    if flags:
        summary["flags"] = dict(flags)
    return summary


def summary_line(summary: Mapping[str, object]) -> str:
    """The summary as one line of JSON (no newline inside, non-ASCII kept)."""
    return json.dumps(summary, ensure_ascii=False, separators=(", ", ": "))


def change_summary(queue: pd.DataFrame, previous: pd.DataFrame | None, movers: int = 5) -> str:
    """Deals new to tier A, dropped from A (including those no longer open), and the biggest
    movers by p_close since the previous queue; empty without one."""
    if previous is None:
        return ""
    changes = queue["tier_change"].fillna("").astype(str)
    new_to_a = queue[(queue["tier"] == "A") & (changes != "")]["deal_id"]
    was_a = set(previous.loc[previous["tier"].astype(str) == "A", "deal_id"].astype(str))
    still_a = set(queue.loc[queue["tier"] == "A", "deal_id"].astype(str))
    dropped = sorted(was_a - still_a)
    now_tier = queue.set_index(queue["deal_id"].astype(str))["tier"]
    dropped_text = [f"{d} (now {now_tier.get(d, 'closed')})" for d in dropped]
    moved = queue.assign(size=queue["p_close_change"].abs()).dropna(subset=["size"])
    # Changes that round to 0.00 are no movers (a CSV's previous p_close is rounded).
    moved = moved[moved["size"] >= MOVER_MIN].nlargest(movers, "size")
    lines = [
        f"Since the previous queue: {len(new_to_a)} new to A, {len(dropped)} dropped from A",
        f"  new to A: {_listed(new_to_a.astype(str).tolist())}",
        f"  dropped from A: {_listed(dropped_text)}",
        "  biggest movers: "
        + _listed([f"{r.deal_id} {r.p_close_change:+.2f} ({r.tier})" for r in moved.itertuples()]),
    ]
    return "\n".join(lines)


def _listed(items: list[str], most: int = 10) -> str:
    if not items:
        return "none"
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more
