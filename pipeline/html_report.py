"""The queue as one HTML file a sales manager opens in a browser: totals, the tier changes
since the last run, then one section per owner with the A deals first; every table sorts by
a click on its header. Self-contained (inline CSS and script, no network), values escaped."""

from __future__ import annotations

import html

import pandas as pd

COLUMNS = {  # queue column -> header
    "rank": "Rank",
    "deal_id": "Deal",
    "stage": "Stage",
    "p_close": "Chance to close",
    "deal_value": "Value",
    "expected_value": "Expected value",
    "tier": "Tier",
    "tier_change": "Tier change",
    "reasons_up": "Helping",
    "reasons_down": "Holding it back",
}
CHANGE_COLUMNS = {
    "rank": "Rank",
    "deal_id": "Deal",
    "owner_id": "Owner",
    "tier_change": "Tier change",
    "rank_change": "Places moved up",
    "p_close": "Chance to close",
    "why_changed": "Why it changed",
}
NUMBERS = ("p_close", "deal_value", "expected_value", "rank", "rank_change")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 2em; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; }
th { cursor: pointer; background: #f4f4f4; }
td.num { text-align: right; }
tr.tier-A td:first-child { border-left: 4px solid #2a7; }
"""
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, column) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var rows = Array.from(body.rows);
    var up = th.dataset.order !== "asc";
    th.dataset.order = up ? "asc" : "desc";
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.sort || a.cells[column].textContent;
      var y = b.cells[column].dataset.sort || b.cells[column].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return up ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
document.body.dataset.ready = "yes";
"""


def render_report(queue: pd.DataFrame, extra_columns: list[str] | None = None) -> str:
    """The page for one queue (one row per open deal, ranked); `extra_columns` (pass-through
    deal columns such as the deal's name) are shown after the deal id."""
    columns = _with_extra(COLUMNS, extra_columns or [], queue)
    as_of = pd.Timestamp(queue["as_of"].iloc[0]).strftime("%Y-%m-%d %H:%M UTC")
    version = html.escape(str(queue["model_version"].iloc[0]))
    tiers = queue["tier"].value_counts().reindex(["A", "B", "C"], fill_value=0)
    parts = [
        f"<h1>Priority queue, {as_of}</h1>",
        f'<p id="totals">{len(queue):,} open deals: A {tiers["A"]:,}, B {tiers["B"]:,}, '
        f"C {tiers['C']:,}; expected value {_money(queue['expected_value'].sum())}; "
        f"model version {version}.</p>",
        _changes_section(queue),
    ]
    for owner, deals in _owners_by_value(queue):
        heading = (
            f"{html.escape(owner)}: {len(deals):,} deals, {int((deals['tier'] == 'A').sum())} in A"
        )
        parts.append(f'<section class="owner" data-owner="{html.escape(owner)}">'
                     f"<h2>{heading}</h2>{_table(deals, columns)}</section>")  # fmt: skip
    body = "\n".join(parts)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Priority queue {as_of}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


def _with_extra(columns: dict[str, str], extra: list[str], queue: pd.DataFrame) -> dict[str, str]:
    shown = [c for c in extra if c in queue.columns]
    head = list(columns.items())
    return dict(head[:3] + [(c, c.replace("_", " ").capitalize()) for c in shown] + head[3:])


def _changes_section(queue: pd.DataFrame) -> str:
    changed = queue[queue["tier_change"].fillna("").astype(str).str.contains("→")]
    title = f"Tier changes since the last run ({len(changed)})"
    if changed.empty:
        return f'<section id="changes"><h2>{title}</h2><p>None.</p></section>'
    return f'<section id="changes"><h2>{title}</h2>{_table(changed, CHANGE_COLUMNS)}</section>'


def _owners_by_value(queue: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Each owner's deals, A first then by rank; owners by the expected value of their A deals."""
    owners = queue.assign(owner=queue["owner_id"].fillna("(no owner)").astype(str))
    order = (
        owners.assign(a_value=owners["expected_value"].where(owners["tier"] == "A", 0.0))
        .groupby("owner")["a_value"]
        .sum()
        .sort_values(ascending=False, kind="stable")
    )
    return [
        (owner, owners[owners["owner"] == owner].sort_values(["tier", "rank"], kind="stable"))
        for owner in order.index
    ]


def _table(rows: pd.DataFrame, columns: dict[str, str]) -> str:
    present = [c for c in columns if c in rows.columns]
    head = "".join(f"<th>{html.escape(columns[c])}</th>" for c in present)
    body = "".join(
        f'<tr class="tier-{html.escape(str(row["tier"]))}">'
        + "".join(_cell(c, row[c]) for c in present)
        + "</tr>"
        for _, row in rows.iterrows()
    )
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(column: str, value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "<td></td>"
    if column in NUMBERS:
        number = float(value)  # type: ignore[arg-type]
        shown = {
            "p_close": f"{number:.0%}",
            "rank_change": f"{int(number):+d}",
            "rank": f"{int(number)}",
        }.get(column, _money(number))
        return f'<td class="num" data-sort="{number:.6f}">{shown}</td>'
    text = str(value)
    if column in ("reasons_up", "reasons_down"):
        items = "".join(f"<li>{html.escape(t)}</li>" for t in text.split("; ") if t)
        return f"<td><ul>{items}</ul></td>"
    return f"<td>{html.escape(text)}</td>"


def _money(value: float) -> str:
    return f"{value:,.0f}"
