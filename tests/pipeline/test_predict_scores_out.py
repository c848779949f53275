"""`predict --to`: a database that does not answer stops the job before any scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from closeprob.pipeline.cli import main
from tests.conftest import _free_port


def test_an_unreachable_database_is_one_line_and_exit_75_before_scoring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://sales:secret@127.0.0.1:{_free_port()}/crm"
    missing_data = tmp_path / "no_deals.csv"  # never read: the database is checked first
    command = ["predict", "--deals", str(missing_data), "--out", str(tmp_path / "q.csv")]
    assert main([*command, "--to", url]) == 75
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: postgresql://sales:***@")
    assert not (tmp_path / "q.csv").exists()


def test_a_to_url_closeprob_cannot_write_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", "--out", str(tmp_path / "q.csv"), "--to", "mysql://db/x"]) == 2
    assert "not a database URL closeprob writes to" in capsys.readouterr().err
