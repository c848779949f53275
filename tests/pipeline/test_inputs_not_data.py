"""Inputs that are not data (issue 19): a bad --as-of, a config that is not UTF-8, unreadable,
with duplicate keys or an out-of-range seed, a folder or FIFO given as a file. Each is one
`error:` line and exit 2 through the real CLI, before any work: nothing is written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from closeprob.pipeline.cli import main

DEALS = "deal_id,created_at,closed_at,outcome,amount\nD1,2024-01-01,,,100\n"
EVENTS = "deal_id,occurred_at,type\nD1,2024-01-02,call\n"
OWN_DATA = {
    "data": {"deals": "deals.csv", "interactions": "interactions.csv", "attributes": []},
    "evaluation": {"segment": None},
    "value": {"segment": None},
}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deals.csv").write_text(DEALS)
    (tmp_path / "interactions.csv").write_text(EVENTS)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(OWN_DATA))
    return tmp_path


def run_refused(argv: list[str], folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`closeprob ARGV` exits 2 with one `error:` line on stderr and writes nothing."""
    before = sorted(p.name for p in folder.iterdir())
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error and "Traceback" not in error, error
    assert sorted(p.name for p in folder.iterdir()) == before
    return error


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("NaT", r"not a time \(NaT\)"),
        ("3000-01-01", r"year 3000, outside 1900–2199"),
        ("1500-01-01", r"year 1500, outside 1900–2199"),
        ("next tuesday", r"is not a date or timestamp"),
    ],
)
def test_an_as_of_that_is_no_usable_time_is_refused_before_any_work(
    as_of: str, message: str, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    error = run_refused(["predict", "--config", "config.yaml", "--as-of", as_of], folder, capsys)
    assert re.search(message, error), error


def test_a_utf16_config_is_refused_naming_its_encoding(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "config.yaml").write_text(yaml.safe_dump(OWN_DATA), encoding="utf-16")
    error = run_refused(["check", "--config", "config.yaml"], folder, capsys)
    assert "not UTF-8" in error and "UTF-16" in error


def test_a_latin1_comment_in_a_config_is_refused_with_its_line(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = yaml.safe_dump(OWN_DATA) + "# März-Export von Jürgen\n"
    (folder / "config.yaml").write_bytes(text.encode("latin-1"))
    error = run_refused(["check", "--config", "config.yaml"], folder, capsys)
    line = text.count("\n")
    assert f"line {line}: not UTF-8" in error and "save the config as UTF-8" in error


def test_an_unreadable_config_is_refused(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mode 000 (root reads it anyway, so the refusal of the read itself is simulated too)."""
    path = folder / "config.yaml"
    path.chmod(0)
    if os.geteuid() != 0:
        assert "not readable" in run_refused(["check", "--config", "config.yaml"], folder, capsys)
    path.chmod(0o644)
    original = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self.name == "config.yaml":
            raise PermissionError(13, "Permission denied")
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    error = run_refused(["check", "--config", "config.yaml"], folder, capsys)
    assert "config cannot be read (Permission denied)" in error


def test_a_key_given_twice_in_a_config_is_refused_not_merged(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = yaml.safe_dump(OWN_DATA) + "data:\n  deals: other.csv\n"
    (folder / "config.yaml").write_text(text)
    error = run_refused(["check", "--config", "config.yaml"], folder, capsys)
    assert "key 'data' appears twice" in error


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_out_of_range_is_refused_before_training(
    seed: int, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "config.yaml").write_text(yaml.safe_dump(OWN_DATA | {"seed": seed}))
    error = run_refused(["train", "--config", "config.yaml"], folder, capsys)
    assert "seed" in error


def test_a_folder_given_as_the_deals_file_is_named_as_a_folder(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "export.csv").mkdir()
    argv = ["train", "--config", "config.yaml", "--deals", "export.csv"]
    assert "export.csv: is a folder, not a file" in run_refused(argv, folder, capsys)


def test_a_fifo_given_as_a_file_is_refused_without_waiting_for_a_writer(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(folder / "pipe.csv")
    os.mkfifo(folder / "pipe.yaml")
    argv = ["train", "--config", "config.yaml", "--interactions", "pipe.csv"]
    assert "pipe.csv: is a named pipe (FIFO)" in run_refused(argv, folder, capsys)
    assert "pipe.yaml: config is a named pipe" in run_refused(
        ["check", "--config", "pipe.yaml"], folder, capsys
    )
    out = ["predict", "--config", "config.yaml", "--out", "pipe.csv"]
    assert "pipe.csv: is a named pipe (FIFO), not a regular file" in run_refused(
        out, folder, capsys
    )
