"""The HTML report, rendered by a real headless browser (Debian's chromium): what it shows."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from closeprob.pipeline.html_report import render_report
from tests.conftest import utc

CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium"


def rendered_dom(page: Path, tmp_path: Path) -> str:
    """The page's DOM after its script ran, from `chromium --headless --dump-dom`."""
    browser = shutil.which("chromium")
    if browser is None:
        pytest.fail(f"the HTML report's test needs Chromium; install it: {CHROMIUM_INSTALL}")
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def report_queue() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": [1, 2, 3, 4, 5],
            "deal_id": ["D1", "D2", "D3", "D4", "D5"],
            "owner_id": ["Ana", "Bo", "Ana", "Bo", "Ana"],
            "p_close": [0.81, 0.62, 0.4, 0.3, 0.05],
            "deal_value": [10_000.0, 9_000.0, 5_000.0, 2_000.0, 50_000.0],
            "expected_value": [8_100.0, 5_580.0, 2_000.0, 600.0, 2_500.0],
            "tier": ["A", "A", "B", "C", "B"],
            "tier_change": ["B→A", "", "new", "A→C", ""],
            "rank_change": pd.array([3, 0, pd.NA, -2, 1], dtype="Int64"),
            "why_changed": ["meetings went from 1 to 4 (raised the score)", "", "", "x", ""],
            "reasons_up": ["<b>4 meetings</b>; a reply", "", "", "", ""],
            "reasons_down": ["", "", "", "", "quiet for 40 days"],
            "p_close_change": [0.2, 0.0, np.nan, -0.3, 0.0],
            "model_version": "3",
            "as_of": utc("2024-06-01"),
        }
    )


def test_the_report_opens_in_a_browser_with_owners_a_deals_first_and_tier_changes(
    tmp_path: Path,
) -> None:
    page = tmp_path / "queue.html"
    page.write_text(render_report(report_queue()), encoding="utf-8")
    dom = rendered_dom(page, tmp_path)
    assert 'data-ready="yes"' in dom  # the sorting script ran
    assert "5 open deals: A 2, B 2, C 1" in dom
    assert "Tier changes since the last run (2)" in dom
    # Owners by the expected value of their A deals: Ana (8,100) before Bo (5,580).
    owners = re.findall(r'<section class="owner" data-owner="([^"]+)"', dom)
    assert owners == ["Ana", "Bo"]
    ana = dom.split('data-owner="Ana"')[1].split("</section>")[0]
    assert re.findall(r"<td>(D\d)</td>", ana) == ["D1", "D3", "D5"]  # A, then B by rank
    assert "&lt;b&gt;4 meetings&lt;/b&gt;" in dom and "<b>4 meetings" not in dom  # escaped
    assert "81%" in dom and "8,100" in dom
