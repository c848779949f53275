"""The score table in SQLite and in a real PostgreSQL server: days added, a day's rerun
replacing its rows, one transaction per write, the schema versioned."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest

from closeprob.pipeline import scores_db
from closeprob.pipeline.scores_db import (
    ScoresDatabaseError,
    ScoresUnavailableError,
    ScoresUrl,
    check_scores_database,
    parse_scores_url,
    read_scores,
    write_scores,
)
from tests.conftest import utc

NOW = utc("2024-06-10T03:00:00")
_databases = itertools.count()


def make_queue(as_of: str, deals: list[str], version: str = "3") -> pd.DataFrame:
    """A ranked queue of `deals` (best first) at `as_of`, in predict's columns."""
    n = len(deals)
    p_close = [0.9 / (i + 1) + 1e-9 for i in range(n)]
    return pd.DataFrame(
        {
            "rank": range(1, n + 1),
            "deal_id": deals,
            "account_id": "A1",
            "owner_id": ["U1", "U2"] * (n // 2) + ["U1"] * (n % 2),
            "p_close": p_close,
            "deal_value": [1000.123456789] * n,
            "value_source": "amount",
            "expected_value": [p * 1000.123456789 for p in p_close],
            "tier": ["A"] + ["C"] * (n - 1),
            "reasons_up": "more calls than usual",
            "reasons_down": "",
            "p_close_change": float("nan"),
            "tier_change": None,
            "model_version": version,
            "as_of": utc(as_of),
        }
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> ScoresUrl:
    """An empty database of each kind (PostgreSQL: a new database on the session's server)."""
    if request.param == "sqlite":
        return parse_scores_url(f"sqlite:///{tmp_path / 'scores.db'}")
    import adbc_driver_postgresql.dbapi

    server = request.getfixturevalue("postgres_url")
    name = f"scores_{next(_databases)}"
    with (
        adbc_driver_postgresql.dbapi.connect(server, autocommit=True) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(f"CREATE DATABASE {name}")
    return parse_scores_url(server.rsplit("/", 1)[0] + f"/{name}")


def test_two_days_and_a_rerun_of_the_second_leave_exactly_the_rows_of_both_days(
    target: ScoresUrl,
) -> None:
    write_scores(target, make_queue("2024-06-01", ["D1", "D2", "D3"]), NOW)
    write_scores(target, make_queue("2024-06-08", ["D1", "D2", "D4"]), NOW)
    rerun = make_queue("2024-06-08T05:00:00", ["D2", "D4"], version="4")
    write_scores(target, rerun, NOW)

    rows = read_scores(target)
    days = pd.to_datetime(rows["as_of"], utc=True).dt.strftime("%Y-%m-%d")
    assert sorted(zip(days, rows["deal_id"], rows["model_version"], strict=True)) == [
        ("2024-06-01", "D1", "3"),
        ("2024-06-01", "D2", "3"),
        ("2024-06-01", "D3", "3"),
        ("2024-06-08", "D2", "4"),
        ("2024-06-08", "D4", "4"),
    ]
    assert latest_deals(target) == ["D2", "D4"]


def latest_deals(target: ScoresUrl) -> list[str]:
    with scores_db._transaction(target) as (cursor, _):
        cursor.execute(f"SELECT deal_id FROM {scores_db.LATEST_VIEW} ORDER BY deal_id")
        return [row[0] for row in cursor.fetchall()]


def test_the_table_keeps_full_precision(target: ScoresUrl) -> None:
    queue = make_queue("2024-06-01", ["D1", "D2"])
    write_scores(target, queue, NOW)
    rows = read_scores(target).sort_values("rank")
    assert rows["p_close"].tolist() == queue["p_close"].tolist()
    assert rows["expected_value"].tolist() == queue["expected_value"].tolist()


def test_a_write_failing_half_way_leaves_the_table_as_it_was(
    target: ScoresUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_scores(target, make_queue("2024-06-01", ["D1", "D2"]), NOW)
    before = read_scores(target)
    real_insert = scores_db.insert_rows

    def insert_then_fail(cursor, connection, target, rows):  # type: ignore[no-untyped-def]
        real_insert(cursor, connection, target, rows.head(1))  # the day is deleted, one row in
        raise OSError("disk failed mid-write")

    monkeypatch.setattr(scores_db, "insert_rows", insert_then_fail)
    with pytest.raises(OSError, match="mid-write"):
        write_scores(target, make_queue("2024-06-01", ["D7", "D8", "D9"]), NOW)
    pd.testing.assert_frame_equal(read_scores(target), before)


def test_a_new_schema_version_is_applied_once_and_keeps_the_rows(
    target: ScoresUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_scores(target, make_queue("2024-06-01", ["D1"]), NOW)
    latest = max(scores_db.MIGRATIONS)
    migrations = scores_db.MIGRATIONS | {
        latest + 1: lambda dialect: [f"ALTER TABLE {scores_db.TABLE} ADD COLUMN stage_name TEXT"]
    }
    monkeypatch.setattr(scores_db, "MIGRATIONS", migrations)
    write_scores(target, make_queue("2024-06-08", ["D1"]), NOW)
    write_scores(target, make_queue("2024-06-09", ["D1"]), NOW)  # not applied twice
    with scores_db._transaction(target) as (cursor, _):
        cursor.execute(f"SELECT version FROM {scores_db.VERSION_TABLE} ORDER BY version")
        assert [row[0] for row in cursor.fetchall()] == list(range(1, latest + 2))
        cursor.execute(f"SELECT count(stage_name), count(*) FROM {scores_db.TABLE}")
        assert tuple(cursor.fetchone()) == (0, 3)


def test_a_version_1_table_is_migrated_to_hold_the_stage_and_the_deal_columns(
    target: ScoresUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database written before version 2 (no stage, no pass-through columns) keeps its rows
    and gets both columns, in the table and in the latest view, on the next write."""
    with monkeypatch.context() as patch:
        patch.setattr(scores_db, "MIGRATIONS", {1: scores_db.MIGRATIONS[1]})
        patch.setattr(scores_db, "COLUMNS", scores_db.COLUMNS_V1)
        patch.setattr(scores_db, "COLUMN_NAMES", [n for n, _, _ in scores_db.COLUMNS_V1])
        write_scores(target, make_queue("2024-06-01", ["D1", "D2"]), NOW)
    queue = make_queue("2024-06-08", ["D1", "D2"]).assign(
        stage=["Proposal", None], industry=["retail", None], seats=[12, 40]
    )
    write_scores(target, queue, NOW, deal_columns=["industry", "seats"])

    rows = read_scores(target).sort_values(["as_of", "rank"])
    assert [None if pd.isna(v) else v for v in rows["stage"]] == [None, None, "Proposal", None]
    assert [None if pd.isna(t) else json.loads(t) for t in rows["deal_columns"]] == [
        None,
        None,
        {"industry": "retail", "seats": 12},
        {"industry": None, "seats": 40},
    ]
    extract = (
        "json_extract(deal_columns, '$.industry')"
        if target.dialect == "sqlite"
        else "deal_columns->>'industry'"
    )
    with scores_db._transaction(target) as (cursor, _):
        cursor.execute(f"SELECT deal_id, stage, {extract} FROM {scores_db.LATEST_VIEW} ORDER BY 1")
        assert [tuple(row) for row in cursor.fetchall()] == [
            ("D1", "Proposal", "retail"),
            ("D2", None, None),
        ]
        cursor.execute(f"SELECT version FROM {scores_db.VERSION_TABLE} ORDER BY version")
        assert [row[0] for row in cursor.fetchall()] == [1, 2]


def test_a_schema_from_a_newer_closeprob_is_refused(
    target: ScoresUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_scores(target, make_queue("2024-06-01", ["D1"]), NOW)
    with scores_db._transaction(target) as (cursor, _):
        cursor.execute(f"INSERT INTO {scores_db.VERSION_TABLE} VALUES (9, '2030-01-01')")
    with pytest.raises(ScoresDatabaseError, match=r"schema version 9 .* newer closeprob"):
        check_scores_database(target)


def test_a_server_that_does_not_answer_is_a_retryable_error_without_the_password() -> None:
    from tests.conftest import _free_port

    url = parse_scores_url(f"postgresql://sales:secret@127.0.0.1:{_free_port()}/crm")
    with pytest.raises(ScoresUnavailableError, match=r"cannot connect .* run again") as caught:
        check_scores_database(url)
    assert "secret" not in str(caught.value) and "sales:***@" in str(caught.value)


def test_a_database_that_does_not_exist_is_a_user_error_not_a_retry(postgres_url: str) -> None:
    url = parse_scores_url(postgres_url.rsplit("/", 1)[0] + "/no_such_database")
    with pytest.raises(ScoresDatabaseError, match=r"no_such_database.*does not exist"):
        check_scores_database(url)


def test_a_file_that_is_not_a_database_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "scores.db").write_text("deal_id,p_close\nD1,0.5\n")
    url = parse_scores_url(f"sqlite:///{tmp_path / 'scores.db'}")
    with pytest.raises(ScoresDatabaseError, match=r"cannot be written .* move .* aside"):
        check_scores_database(url)


@pytest.mark.parametrize("url", ["mysql://db/x", "sqlite:///", "scores.db"])
def test_a_url_that_is_not_a_database_closeprob_writes_is_a_config_error(url: str) -> None:
    with pytest.raises(ScoresDatabaseError, match=r"sqlite:///outputs/scores\.db"):
        parse_scores_url(url)


def test_checking_a_new_sqlite_database_creates_nothing(tmp_path: Path) -> None:
    check_scores_database(parse_scores_url(f"sqlite:///{tmp_path / 'new' / 'scores.db'}"))
    assert list(tmp_path.iterdir()) == []
