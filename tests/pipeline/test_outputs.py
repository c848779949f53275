"""Outputs never destroy anything: `predict --out` may not be an input (by name, symlink, `..`
or hard link), a folder, a path below a file, or a file that is not a previous queue;
`generate` keeps existing data without --force; queue CSV cells cannot run as formulas.

Each case runs through the real CLI and is refused before any model is loaded or any data read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeprob.pipeline.cli import main
from closeprob.pipeline.io import neutralise_formulas, read_previous_queue, restore_formulas
from tests.conftest import write_small_crm


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config over a small generated CRM (no model: every case fails before loading one)."""
    return write_small_crm(tmp_path_factory.mktemp("crm"), 60)


def _predict(config: Path, out: Path | str) -> int:
    return main(["predict", "--config", str(config), "--out", str(out)])


def _refused(
    config: Path, out: Path | str, message: str, capsys: pytest.CaptureFixture[str]
) -> str:
    deals = config.parent / "deals.csv"
    before = deals.read_bytes()
    assert _predict(config, out) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    assert message in error, error
    assert str(out) in error
    assert deals.read_bytes() == before
    return error


def test_an_out_equal_to_the_deals_file_is_refused_and_the_deals_stay(
    crm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(crm, crm.parent / "deals.csv", "is the input file", capsys)


def test_an_out_that_reaches_the_deals_through_dot_dot_is_refused(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (crm.parent / "sub").mkdir(exist_ok=True)
    _refused(crm, crm.parent / "sub" / ".." / "deals.csv", "is the input file", capsys)


def test_an_out_that_is_a_symlink_to_the_interactions_is_refused(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "queue.csv"
    link.symlink_to(crm.parent / "interactions.csv")
    before = (crm.parent / "interactions.csv").read_bytes()
    _refused(crm, link, "is the input file", capsys)
    assert (crm.parent / "interactions.csv").read_bytes() == before


def test_an_out_that_is_a_hard_link_to_the_deals_is_refused(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "queue.csv"
    os.link(crm.parent / "deals.csv", link)
    _refused(crm, link, "is the input file", capsys)


def test_an_existing_file_that_is_not_a_queue_is_never_overwritten(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "forecast.csv"
    other.write_text("region,quarter,amount\nEU,Q1,100\n")
    _refused(crm, other, "exists and is not a previous queue (no column 'rank'", capsys)
    assert other.read_text() == "region,quarter,amount\nEU,Q1,100\n"


def test_an_existing_unreadable_file_at_out_is_never_overwritten(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "queue.parquet"
    other.write_bytes(b"not parquet at all")
    _refused(crm, other, "exists and is not a previous queue", capsys)
    assert other.read_bytes() == b"not parquet at all"


def test_an_out_that_is_a_folder_is_refused(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "queue.csv"
    folder.mkdir()
    _refused(crm, folder, "is a folder", capsys)


def test_an_out_below_a_regular_file_is_refused(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    _refused(crm, tmp_path / "notes.txt" / "queue.csv", "is a file, not a folder", capsys)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_out_in_a_folder_without_write_permission_is_refused(
    crm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Tests may run as root, for whom chmod does not deny: the permission check is stubbed.
    real_access = os.access
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode)
    )
    _refused(crm, locked / "queue.csv", "no write permission in", capsys)


def test_an_unsupported_out_extension_is_refused_before_any_work(
    crm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(crm, tmp_path / "queue.xlsx", "unsupported extension '.xlsx'", capsys)


def test_a_failed_predict_creates_no_tracking_store(
    crm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    assert _predict(crm, tmp_path / "queue.csv") == 2
    error = capsys.readouterr().err
    assert "no tracking store at mlflow.db (sqlite:///mlflow.db); run `make train` first" in error
    assert list(tmp_path.iterdir()) == []


def test_generate_refuses_to_overwrite_existing_data_without_force(
    crm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deals = crm.parent / "deals.csv"
    deals.write_text(deals.read_text() + "\n")  # a user's edit, which generate would lose
    before = deals.read_bytes()
    assert main(["generate", "--config", str(crm)]) == 2
    error = capsys.readouterr().err
    assert f"{deals}" in error and "Pass --force (make generate FORCE=1)" in error
    assert deals.read_bytes() == before
    assert main(["generate", "--config", str(crm), "--force"]) == 0
    assert deals.read_bytes() != before


FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_csv_cells_that_would_run_as_formulas_are_neutralised_and_read_back_exactly(
    tmp_path: Path,
) -> None:
    queue = pd.DataFrame(
        {
            "rank": [1, 2, 3, 4, 5, 6],
            "deal_id": FORMULAS,
            "p_close": [0.5] * 6,
            "expected_value": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0],
            "tier": ["A"] * 6,
        }
    )
    from closeprob.pipeline.io import write_table

    write_table(queue, tmp_path / "queue.csv")
    text = (tmp_path / "queue.csv").read_text()
    cells = pd.read_csv(tmp_path / "queue.csv", dtype=str, keep_default_na=False)
    assert all(cell.startswith("'") for cell in cells["deal_id"]), text
    assert cells["expected_value"].iloc[0] == "-1.5"  # numbers stay numbers
    previous = read_previous_queue(tmp_path / "queue.csv")
    assert previous is not None
    assert previous["deal_id"].tolist() == FORMULAS
    write_table(queue, tmp_path / "queue.parquet")
    assert pd.read_parquet(tmp_path / "queue.parquet")["deal_id"].tolist() == FORMULAS


@given(st.lists(st.one_of(st.text(max_size=6), st.none(), st.floats(allow_nan=False)), max_size=8))
def test_neutralising_never_leaves_a_formula_start_and_restoring_gives_the_cells_back(
    cells: list[object],
) -> None:
    frame = pd.DataFrame({"cell": pd.Series(cells, dtype=object)})
    safe = neutralise_formulas(frame)
    for value in safe["cell"]:
        if isinstance(value, str) and value:
            assert value[0] not in "=+-@\t\r"
    for before, after in zip(frame["cell"], safe["cell"], strict=True):
        if not isinstance(before, str):
            assert after is before or (after != after and before != before)
    assert restore_formulas(safe)["cell"].tolist() == frame["cell"].tolist()


def test_a_failed_predict_with_a_model_folder_creates_no_tracking_store(
    crm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy = Path(__file__).resolve().parents[1] / "fixtures" / "model_closeprob_0_1" / "model"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    missing = tmp_path / "nope.csv"
    code = main(["predict", "--config", str(crm), "--model", str(legacy), "--deals", str(missing)])
    assert code == 2
    assert "nope.csv: file not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@given(
    st.lists(st.sampled_from([".", "sub/..", "sub/./..", "alias"]), max_size=4),
    st.sampled_from(["deals.csv", "interactions.csv", "truth.csv"]),
)
def test_every_spelling_of_an_input_path_is_refused_as_out(
    crm: Path, segments: list[str], name: str
) -> None:
    """Through `.`, `..` and a symlinked folder (`alias` points at the data folder)."""
    from closeprob.pipeline.io import OutputError, check_output_path

    folder = crm.parent
    (folder / "sub").mkdir(exist_ok=True)
    if not (folder / "alias").exists():
        (folder / "alias").symlink_to(folder)
    inputs = [folder / n for n in ("deals.csv", "interactions.csv", "truth.csv")]
    spelled = Path(folder, *segments, name)
    with pytest.raises(OutputError, match="is the input file"):
        check_output_path(spelled, inputs)
