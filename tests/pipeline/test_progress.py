"""Long stages report their time: a plain line when not on a terminal, nested ones at -v."""

from __future__ import annotations

import logging
import re

import pytest

from closeprob.pipeline.cli import configure_logging, main
from closeprob.pipeline.progress import stage


def test_a_stage_logs_its_elapsed_time_as_a_plain_line_off_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(verbose=False, quiet=False)
    with stage("fitting"):
        pass
    out, err = capsys.readouterr()
    # No live drawing off a terminal; the line starts with its UTC time there (cron, systemd).
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ   fitting: 0\.0 s", out), out
    assert err == ""


def test_a_stage_inside_another_logs_only_when_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(verbose=False, quiet=False)
    with stage("week 1/2"), stage("fitting"):
        pass
    assert "fitting" not in capsys.readouterr().out
    configure_logging(verbose=True, quiet=False)
    with stage("week 1/2"), stage("fitting"):
        pass
    assert "  fitting: 0.0 s" in capsys.readouterr().out


def test_quiet_silences_progress_and_verbose_is_accepted_after_the_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(verbose=False, quiet=True)
    with stage("fitting"):
        pass
    assert capsys.readouterr().out == ""
    assert main(["check", "-v", "--config", "nowhere.yaml"]) == 2
    assert logging.getLogger("closeprob").level == logging.DEBUG
    assert main(["-q", "check", "--config", "nowhere.yaml"]) == 2
    assert logging.getLogger("closeprob").level == logging.WARNING


def test_mlflow_talks_only_with_verbose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MLflow's INFO lines (database set-up, input example) clutter a job's output: shown with
    -v only."""
    import logging

    from closeprob.pipeline.cli import configure_logging

    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    configure_logging(verbose=False, quiet=False)
    assert logging.getLogger("mlflow").getEffectiveLevel() == logging.WARNING
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL")
    configure_logging(verbose=True, quiet=False)
    assert logging.getLogger("mlflow").getEffectiveLevel() == logging.DEBUG
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL")
    configure_logging(verbose=False, quiet=False)
