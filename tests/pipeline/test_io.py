"""read_table, write_atomic and write_table: the only code that touches files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.io import read_table, write_atomic, write_table
from closeprob.pipeline.validate import validate_deals
from tests.conftest import make_deals, write_csv

HEADER = "deal_id,created_at,closed_at,outcome,region\n"


def typed_deals() -> pd.DataFrame:
    return make_deals(
        [
            {"deal_id": "D1", "created_at": "2024-01-01T09:30:00", "amount": 1000.0},
            {
                "deal_id": "D2",
                "created_at": "2024-01-02T00:00:00",
                "closed_at": "2024-02-01T17:00:00",
                "outcome": "won",
            },
        ]
    )


# read_table: refusals


def test_a_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match=r"deals\.csv: file not found; check the path"):
        read_table(tmp_path / "deals.csv")


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_bytes(b"")
    with pytest.raises(
        DataContractError, match=r"deals\.csv: the file is empty; expected a header"
    ):
        read_table(path)


def test_a_file_of_blank_lines_is_refused_as_empty(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "deals.csv", "\n\n")
    with pytest.raises(DataContractError, match=r"deals\.csv: the file is empty"):
        read_table(path)


def test_an_unsupported_extension_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "deals.xlsx", HEADER)
    with pytest.raises(
        DataContractError, match=r"deals\.xlsx: unsupported extension '\.xlsx'; use \.csv"
    ):
        read_table(path)


def test_a_semicolon_separated_file_is_reported_as_such(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "deals.csv",
        "deal_id;created_at;closed_at;outcome\nD1;2024-01-01;;\nD2;2024-01-02;;\n",
    )
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: found one column 'deal_id;created_at;closed_at;outcome'; "
        r"the file looks ';'-separated",
    ):
        read_table(path)


def test_a_latin1_file_with_accents_is_refused_as_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_bytes((HEADER + "D1,2024-01-01,,,Zürich\n").encode("latin-1"))
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: not UTF-8 text \(byte b'\\xfc' at offset 61\); it looks like "
        r"Latin-1 or Windows-1252\. Re-save it as UTF-8, e\.g\. `iconv -f WINDOWS-1252",
    ):
        read_table(path)


def test_the_offset_of_a_non_utf8_byte_is_counted_from_the_start_of_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deals.csv"
    body = HEADER + "D1,2024-01-01,,,Paris\n" * 20_000
    path.write_bytes((body + "D2,2024-01-01,,,Zürich\n").encode("latin-1"))
    offset = len(body) + len("D2,2024-01-01,,,Z")
    with pytest.raises(
        DataContractError, match=rf"deals\.csv: not UTF-8 text \(byte b'\\xfc' at offset {offset}\)"
    ):
        read_table(path)


def test_a_gb18030_file_with_chinese_text_is_refused_as_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_bytes((HEADER + "D1,2024-01-01,,,北京\n").encode("gb18030"))
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: not UTF-8 text .* it looks like GB18030/GBK \(Chinese\)\. "
        r"Re-save it as UTF-8, e\.g\. `iconv -f GB18030",
    ):
        read_table(path)


def test_a_corrupt_parquet_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deals.parquet"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataContractError, match=r"deals\.parquet: not a readable Parquet file"):
        read_table(path)


# read_table: what is read


def test_a_utf8_file_with_a_bom_reads_deal_id_as_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    path.write_bytes((HEADER + "D1,2024-01-01,,,Zürich\n").encode("utf-8-sig"))
    deals = read_table(path)
    assert deals.columns[0] == "deal_id"
    assert deals["region"].tolist() == ["Zürich"]


def test_empty_csv_cells_are_missing_while_the_text_na_stays_text(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "deals.csv", HEADER + "D1,2024-01-01,,,NA\nNA,2024-01-02,,,\n")
    deals = read_table(path)
    assert deals["region"].iloc[0] == "NA"
    assert deals["deal_id"].tolist() == ["D1", "NA"]
    assert deals["closed_at"].isna().all()
    assert pd.isna(deals["region"].iloc[1])


def test_csv_columns_are_read_as_text(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "deals.csv", "deal_id,amount\n007,12.50\n")
    assert read_table(path).to_dict("records") == [{"deal_id": "007", "amount": "12.50"}]


def test_an_upper_case_extension_is_accepted(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "DEALS.CSV", "deal_id\nD1\n")
    assert read_table(path)["deal_id"].tolist() == ["D1"]


# write_atomic and write_table


def test_a_failing_writer_leaves_the_existing_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "queue.csv"
    path.write_bytes(b"deal_id\nD1\n")

    def write_half_then_fail(temporary: Path) -> None:
        temporary.write_bytes(b"deal_id\nD9")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(path, write_half_then_fail)
    assert path.read_bytes() == b"deal_id\nD1\n"


def test_a_failing_writer_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    def fail(temporary: Path) -> None:
        temporary.write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        write_atomic(tmp_path / "queue.csv", fail)
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "out" / "deep" / "queue.csv"
    write_atomic(path, lambda temporary: temporary.write_text("deal_id\n"))
    assert path.read_text() == "deal_id\n"
    assert [p.name for p in path.parent.iterdir()] == ["queue.csv"]


def test_a_written_table_gets_the_same_permissions_as_an_ordinary_file(tmp_path: Path) -> None:
    ordinary = tmp_path / "ordinary.csv"
    ordinary.write_text("deal_id\n")
    written = tmp_path / "written.csv"
    write_table(pd.DataFrame({"deal_id": ["D1"]}), written)
    assert stat.S_IMODE(os.stat(written).st_mode) == stat.S_IMODE(os.stat(ordinary).st_mode)


def test_write_table_refuses_an_unsupported_extension_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(
        DataContractError, match=r"queue\.xlsx: unsupported extension '\.xlsx'; use \.csv"
    ):
        write_table(typed_deals(), tmp_path / "queue.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_a_parquet_table_round_trips_through_read_table(tmp_path: Path) -> None:
    path = tmp_path / "deals.parquet"
    write_table(typed_deals(), path)
    pd.testing.assert_frame_equal(read_table(path), typed_deals())


def test_a_csv_table_round_trips_through_read_table_and_validation(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    write_table(typed_deals(), path)
    back = validate_deals(read_table(path), "deals.csv")
    expected = validate_deals(typed_deals(), "deals.csv")
    # An all-empty timestamp column may come back in another unit; values are what matter.
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert str(back["created_at"].dt.tz) == "UTC"


def test_csv_timestamps_are_written_as_iso_8601_with_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    write_table(typed_deals(), path)
    assert read_table(path)["created_at"].iloc[0] == "2024-01-01T09:30:00+0000"
