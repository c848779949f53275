"""What a scheduler relies on: the queue lock (exit 75 naming the holder), the one-line JSON
summary, the change summary and timestamps on logs that go to a file."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from closeprob.pipeline.cli import _ConsoleHandler, main
from closeprob.pipeline.lock import LockHeldError, lock_path, queue_lock
from closeprob.pipeline.summary import change_summary, run_summary, summary_line
from tests.conftest import utc


def test_a_second_lock_on_the_same_queue_fails_naming_the_holder(tmp_path: Path) -> None:
    queue = tmp_path / "queue.csv"
    with (
        queue_lock(queue, 0),
        pytest.raises(LockHeldError, match=rf"pid {os.getpid()} on .* since .*lock_wait"),
        queue_lock(queue, 0.3),
    ):
        pass
    assert not lock_path(queue).exists()  # released and removed


def test_a_waiting_lock_gets_the_queue_when_the_holder_finishes(tmp_path: Path) -> None:
    queue, order = tmp_path / "queue.csv", []

    def hold() -> None:
        with queue_lock(queue, 0):
            order.append("first holds")
            time.sleep(0.5)
        order.append("first released")

    holder = threading.Thread(target=hold)
    holder.start()
    while not order:
        time.sleep(0.01)
    with queue_lock(queue, 10):
        order.append("second holds")
    holder.join()
    assert order == ["first holds", "first released", "second holds"]


def test_predict_on_a_locked_queue_exits_75_before_reading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = tmp_path / "queue.csv"
    with queue_lock(queue, 0):
        command = ["predict", "--deals", str(tmp_path / "absent.csv"), "--out", str(queue)]
        assert main(command) == 75
    error = capsys.readouterr().err
    assert "another predict is writing this queue" in error and f"pid {os.getpid()}" in error


def small_queue(tiers: list[str], changes: list[str], moves: list[float]) -> pd.DataFrame:
    n = len(tiers)
    return pd.DataFrame(
        {
            "rank": range(1, n + 1),
            "deal_id": [f"D{i}" for i in range(1, n + 1)],
            "tier": tiers,
            "tier_change": changes,
            "p_close_change": moves,
            "model_version": "7",
            "as_of": utc("2024-06-01"),
        }
    )


def test_the_summary_is_one_json_line_with_flags_only_when_given() -> None:
    queue = small_queue(["A", "B", "C", "C"], ["B→A", "", "new", ""], [0.2, 0.0, np.nan, 0.0])
    summary = run_summary(queue, {"queue": "out/q.csv"}, "run1")
    assert summary["tiers"] == {"A": 1, "B": 1, "C": 2}
    assert (summary["tier_changes"], summary["new_deals"], summary["rows"]) == (1, 1, 4)
    assert "flags" not in summary
    flagged = run_summary(queue, {}, "run1", flags={"drift": "p_close mean moved 0.12"})
    line = summary_line(flagged)
    assert "\n" not in line and json.loads(line)["flags"] == {"drift": "p_close mean moved 0.12"}
    assert json.loads(line)["as_of"] == "2024-06-01T00:00:00+00:00"


def test_the_change_summary_names_deals_new_to_a_dropped_from_a_and_the_movers() -> None:
    queue = small_queue(["A", "B", "C"], ["B→A", "A→B", ""], [0.30, -0.25, 0.01])
    previous = pd.DataFrame({"deal_id": ["D1", "D2", "D9"], "tier": ["B", "A", "A"]})
    text = change_summary(queue, previous, movers=2)
    assert "1 new to A, 2 dropped from A" in text
    assert "new to A: D1" in text and "dropped from A: D2 (now B), D9 (now closed)" in text
    assert "biggest movers: D1 +0.30 (A), D2 -0.25 (B)" in text
    assert change_summary(queue, None) == ""
    still = small_queue(["A", "B", "C"], ["", "", ""], [0.0004, -0.0001, 0.0])
    assert "biggest movers: none" in change_summary(still, previous)


def test_logs_written_to_a_file_start_with_their_utc_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    record = logging.LogRecord("closeprob", logging.INFO, "", 0, "\nScored 3 deals", None, None)
    _ConsoleHandler().emit(record)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
    assert stream.getvalue() == f"\n{stamp} Scored 3 deals\n"
