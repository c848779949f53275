"""Command-line numbers through the real CLI: refused with exit 2 and the value, never clamped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from closeprob.pipeline.cli import main


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--weeks", "-3", r"argument --weeks: expected a whole number of at least 1, got '-3'"),
        ("--weeks", "0", r"argument --weeks: expected a whole number of at least 1, got '0'"),
        ("--weeks", "two", r"argument --weeks: expected a whole number, got 'two'"),
        (
            "--retrain-every",
            "0",
            r"argument --retrain-every: expected a whole number of at least 1, got '0'",
        ),
        (
            "--retrain-every",
            "-1",
            r"argument --retrain-every: expected a whole number of at least 1, got '-1'",
        ),
    ],
)
def test_backtest_refuses_a_count_below_one_instead_of_running_one_week(
    flag: str,
    value: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["backtest", flag, value]) == 2
    err = capsys.readouterr().err
    assert "closeprob backtest: error:" in err
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []
