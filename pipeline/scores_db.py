"""Where scores go out to the CRM: the `deal_scores` table, one row per (deal_id, as_of,
model_version), and the view `deal_scores_latest` (one row per deal of the latest scoring day,
unique by deal_id: what a reverse-ETL tool such as Hightouch or Census syncs).

Two databases with one schema: SQLite (`sqlite:///outputs/scores.db`, no server; the standard
library's driver) and PostgreSQL (`postgresql://user@host:port/db`; bulk path: ADBC's
`adbc_ingest`, a binary COPY, into a temporary table, then one `INSERT … SELECT`). closeprob
creates and versions the schema (`closeprob_schema`, one row per migration applied). A write is
one transaction: it replaces the rows of its as_of day (a rerun is idempotent) and adds its own;
a failure rolls everything back. Probabilities and money keep full precision here.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import pyarrow as pa

from closeprob.pipeline.errors import CloseprobError, ConfigError, RetryableError

TABLE = "deal_scores"
LATEST_VIEW = "deal_scores_latest"
VERSION_TABLE = "closeprob_schema"
CONNECT_TIMEOUT_S = 10

# name, SQL type per dialect ("float", "text", "int", "timestamp", "date", "json"), NOT
# NULL. The columns of schema version 1 (its migration creates them; never edited):
COLUMNS_V1: tuple[tuple[str, str, bool], ...] = (
    ("deal_id", "text", True),
    ("as_of", "timestamp", True),
    ("as_of_date", "date", True),
    ("model_version", "text", True),
    ("rank", "int", True),
    ("p_close", "float", True),
    ("deal_value", "float", False),
    ("value_source", "text", False),
    ("expected_value", "float", True),
    ("tier", "text", True),
    ("reasons_up", "text", False),
    ("reasons_down", "text", False),
    ("p_close_change", "float", False),
    ("tier_change", "text", False),
    ("rank_change", "int", False),
    ("why_changed", "text", False),
    ("account_id", "text", False),
    ("owner_id", "text", False),
    ("written_at", "timestamp", True),
)
# Added by version 2: the deal's stage and the queue's pass-through deal columns
# (`predict.columns`, by their names in the deals file) as one JSON object: which columns pass
# through is a config setting, the table's schema is not.
COLUMNS_V2 = (("stage", "text", False), ("deal_columns", "json", False))
COLUMNS = COLUMNS_V1 + COLUMNS_V2
COLUMN_NAMES = [name for name, _, _ in COLUMNS]
TYPES = {
    "sqlite": {"float": "REAL", "text": "TEXT", "int": "INTEGER", "timestamp": "TEXT",
               "date": "TEXT", "json": "TEXT"},
    "postgresql": {"float": "DOUBLE PRECISION", "text": "TEXT", "int": "BIGINT",
                   "timestamp": "TIMESTAMPTZ", "date": "DATE", "json": "JSONB"},
}  # fmt: skip


def _create_table(dialect: str) -> str:
    """Version 1's table (later versions add columns with ALTER TABLE)."""
    types = TYPES[dialect]
    columns = ",\n  ".join(
        f"{name} {types[kind]}{' NOT NULL' if required else ''}"
        for name, kind, required in COLUMNS_V1
    )
    return f"CREATE TABLE {TABLE} (\n  {columns},\n  PRIMARY KEY (deal_id, as_of, model_version)\n)"


def _create_latest_view() -> str:
    return (
        f"CREATE VIEW {LATEST_VIEW} AS SELECT * FROM {TABLE} "
        f"WHERE as_of_date = (SELECT max(as_of_date) FROM {TABLE})"
    )


# The schema's history: version -> statements. A database at version n gets n+1… applied in
# the write's transaction; a new version is appended here, never edited once released.
MIGRATIONS: dict[int, Callable[[str], list[str]]] = {
    1: lambda dialect: [
        _create_table(dialect),
        f"CREATE INDEX {TABLE}_as_of_date ON {TABLE} (as_of_date)",
        _create_latest_view(),
    ],
    2: lambda dialect: [
        *(
            f"ALTER TABLE {TABLE} ADD COLUMN {name} {TYPES[dialect][kind]}"
            for name, kind, _ in COLUMNS_V2
        ),
        # PostgreSQL expands a view's * when it is created: made again to show the new columns.
        f"DROP VIEW {LATEST_VIEW}",
        _create_latest_view(),
    ],
}


class ScoresDatabaseError(ConfigError):
    """The score table cannot be written for a reason a user must fix (exit 2)."""


class ScoresUnavailableError(RetryableError):
    """The database does not answer or is busy (exit 75: try again later)."""


@dataclass(frozen=True)
class ScoresUrl:
    """A parsed `--to` URL: the dialect, and a SQLite file or a PostgreSQL connection URI."""

    dialect: str
    url: str
    path: Path | None = None

    @property
    def shown(self) -> str:
        """The URL with any password replaced by ***, for messages and logs."""
        return redact(self.url)


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def parse_scores_url(url: str) -> ScoresUrl:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `postgresql://…` (`postgres://`)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise ScoresDatabaseError(f"--to {url!r}: no file after sqlite:///; e.g. "
                                      "sqlite:///outputs/scores.db")  # fmt: skip
        return ScoresUrl("sqlite", url, Path(path))
    if re.match(r"^postgres(ql)?://", url):
        return ScoresUrl("postgresql", url)
    raise ScoresDatabaseError(
        f"--to {redact(url)!r}: not a database URL closeprob writes to; use "
        "sqlite:///outputs/scores.db or postgresql://user@host:5432/database"
    )


def resolve_scores_url(to: str | None, queue_path: Path) -> ScoresUrl | None:
    """The table a predict writes: `to`, or a SQLite file scores.db beside the queue when
    `to` is None; None when `to` is "off"."""
    if to == "off":
        return None
    return parse_scores_url(to or f"sqlite:///{queue_path.parent / 'scores.db'}")


def score_rows(
    queue: pd.DataFrame, written_at: pd.Timestamp, deal_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per queue row, in the table's columns; full precision. The as_of day is the
    UTC date of `as_of` (a rerun of that day replaces its rows). The queue's `deal_columns`
    (pass-through columns) go into one JSON object per row; NULL when there are none."""
    as_of = pd.to_datetime(queue["as_of"], utc=True)
    rows = pd.DataFrame(index=queue.index)
    for name in COLUMN_NAMES:
        rows[name] = queue[name] if name in queue.columns else None
    return rows.assign(
        deal_columns=deal_columns_json(queue, deal_columns),
        as_of=as_of,
        as_of_date=as_of.dt.floor("D"),
        rank=queue["rank"].astype("int64"),
        rank_change=pd.to_numeric(rows["rank_change"]).astype("Int64"),
        p_close_change=pd.to_numeric(rows["p_close_change"], errors="coerce"),
        deal_value=pd.to_numeric(rows["deal_value"], errors="coerce"),
        model_version=queue["model_version"].astype(str),
        written_at=written_at,
    )[COLUMN_NAMES].reset_index(drop=True)


def deal_columns_json(queue: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Per row, `columns` of the queue as a JSON object (missing values as null; numbers as
    numbers; anything else as its text); None per row without columns."""
    columns = [c for c in columns if c in queue.columns]  # the Spark queue has none yet
    if not columns:
        return pd.Series(None, index=queue.index, dtype=object)
    cells = queue[columns].astype(object)
    cells = cells.where(cells.notna(), None)
    texts = [
        json.dumps(dict(zip(columns, values, strict=True)), ensure_ascii=False, default=str)
        for values in cells.itertuples(index=False, name=None)
    ]
    return pd.Series(texts, index=queue.index, dtype=object)


def check_scores_database(target: ScoresUrl) -> None:
    """Before any scoring: the database answers and its schema is one this closeprob knows.
    Unreachable or busy: ScoresUnavailableError (retryable); otherwise a user error."""
    if target.path is not None and not target.path.exists():
        _check_new_sqlite(target, target.path)  # created by the write, not by this check
        return
    with _transaction(target, read_only=True) as (cursor, _):
        _schema_version(cursor, target)


def _check_new_sqlite(target: ScoresUrl, path: Path) -> None:
    """A new SQLite file can be made at `path`: its nearest existing folder is writable."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ScoresDatabaseError(
            f"{target.shown}: cannot create the database: {folder} is not a writable folder; "
            "choose another --to"
        )


def write_scores(
    target: ScoresUrl,
    queue: pd.DataFrame,
    written_at: pd.Timestamp,
    deal_columns: Sequence[str] = (),
) -> int:
    """Replace the rows of the queue's as_of day by the queue's, in one transaction (schema
    created or migrated first, in the same transaction); the rows written. `deal_columns`:
    the queue's pass-through columns (`predict.columns`)."""
    rows = score_rows(queue, written_at, deal_columns)
    days = rows["as_of_date"].unique()
    if len(days) != 1:
        raise ValueError(f"a queue has one as_of day, got {len(days)}")
    with _transaction(target) as (cursor, connection):
        migrate(cursor, target)
        delete_day(cursor, target, days[0])
        insert_rows(cursor, connection, target, rows)
    return len(rows)


def migrate(cursor: Any, target: ScoresUrl) -> int:
    """Apply the migrations the database lacks; its version afterwards."""
    current = _schema_version(cursor, target)
    if current == 0:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER PRIMARY KEY, "
            f"applied_at {TYPES[target.dialect]['timestamp']} NOT NULL)"
        )
    for version in sorted(v for v in MIGRATIONS if v > current):
        for statement in MIGRATIONS[version](target.dialect):
            cursor.execute(statement)
        stamp = pd.Timestamp.now(tz="UTC").isoformat()
        cursor.execute(
            f"INSERT INTO {VERSION_TABLE} (version, applied_at) VALUES ({version}, '{stamp}')"
        )
    return max(MIGRATIONS)


def _schema_version(cursor: Any, target: ScoresUrl) -> int:
    """The highest migration applied (0: none); an error if a newer closeprob wrote it."""
    if target.dialect == "sqlite":
        cursor.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
        )
    else:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tablename = $1", (VERSION_TABLE,))
    if cursor.fetchone()[0] == 0:
        return 0
    cursor.execute(f"SELECT max(version) FROM {VERSION_TABLE}")
    version = int(cursor.fetchone()[0] or 0)
    if version > max(MIGRATIONS):
        raise ScoresDatabaseError(
            f"{target.shown}: schema version {version} of table {TABLE!r} was written by a newer "
            f"closeprob (this one knows up to {max(MIGRATIONS)}); upgrade closeprob"
        )
    return version


def delete_day(cursor: Any, target: ScoresUrl, day: pd.Timestamp) -> None:
    if target.dialect == "sqlite":
        cursor.execute(f"DELETE FROM {TABLE} WHERE as_of_date = ?", (day.strftime("%Y-%m-%d"),))
    else:
        day_text = day.date().isoformat()
        cursor.execute(f"DELETE FROM {TABLE} WHERE as_of_date = $1::date", (day_text,))


def insert_rows(cursor: Any, connection: Any, target: ScoresUrl, rows: pd.DataFrame) -> None:
    """SQLite: executemany in process. PostgreSQL: ADBC bulk ingest (binary COPY) into a
    temporary table, then one INSERT … SELECT … ON CONFLICT into the table."""
    names = ", ".join(COLUMN_NAMES)
    if target.dialect == "sqlite":
        marks = ", ".join("?" * len(COLUMN_NAMES))
        cursor.executemany(f"INSERT INTO {TABLE} ({names}) VALUES ({marks})", _sqlite_rows(rows))
        return
    cursor.adbc_ingest("closeprob_incoming", _arrow_rows(rows), mode="create", temporary=True)
    updates = ", ".join(f"{n} = excluded.{n}" for n in COLUMN_NAMES[4:])
    # JSON arrives as text: PostgreSQL casts text to jsonb only when told.
    selected = ", ".join(f"{n}::jsonb" if k == "json" else n for n, k, _ in COLUMNS)
    cursor.execute(
        f"INSERT INTO {TABLE} ({names}) SELECT {selected} FROM closeprob_incoming "
        f"ON CONFLICT (deal_id, as_of, model_version) DO UPDATE SET {updates}"
    )
    cursor.execute("DROP TABLE closeprob_incoming")


def _sqlite_rows(rows: pd.DataFrame) -> list[tuple[object, ...]]:
    """Timestamps as ISO 8601 text in UTC, the day as YYYY-MM-DD, missing values as NULL."""
    text = rows.assign(
        as_of=rows["as_of"].map(pd.Timestamp.isoformat),
        as_of_date=rows["as_of_date"].dt.strftime("%Y-%m-%d"),
        written_at=rows["written_at"].map(pd.Timestamp.isoformat),
    ).astype(object)
    text = text.where(text.notna(), None)
    rows_out = text.itertuples(index=False)
    return [tuple(v.item() if hasattr(v, "item") else v for v in row) for row in rows_out]


def _arrow_rows(rows: pd.DataFrame) -> pa.Table:
    """The rows as Arrow with the column types of the PostgreSQL table (times in UTC)."""
    arrow = {"float": pa.float64(), "text": pa.string(), "int": pa.int64(), "json": pa.string(),
             "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32()}  # fmt: skip
    columns = {}
    for name, kind, _ in COLUMNS:
        values = rows[name]
        if kind in ("timestamp", "date"):
            values = values.dt.tz_convert(None).to_numpy()  # UTC wall times
            if kind == "date":
                values = values.astype("datetime64[D]")
        columns[name] = pa.array(values, type=arrow[kind], from_pandas=True)
    return pa.table(columns)


@contextmanager
def _transaction(target: ScoresUrl, read_only: bool = False) -> Iterator[tuple[Any, Any]]:
    """A cursor in one transaction: committed when the block ends, rolled back on any error
    (and by the server when the process dies). `read_only` (SQLite): no file is created."""
    if target.dialect == "sqlite":
        with _sqlite_transaction(target, read_only) as pair:
            yield pair
        return
    with _postgres_transaction(target) as pair:
        yield pair


@contextmanager
def _sqlite_transaction(target: ScoresUrl, read_only: bool) -> Iterator[tuple[Any, Any]]:
    assert target.path is not None
    try:
        if read_only:
            where = f"{target.path.resolve().as_uri()}?mode=ro"
        else:
            target.path.parent.mkdir(parents=True, exist_ok=True)
            where = str(target.path)
        connection = sqlite3.connect(
            where, timeout=CONNECT_TIMEOUT_S, isolation_level=None, uri=read_only
        )
    except (OSError, sqlite3.Error) as exc:
        raise ScoresDatabaseError(f"{target.shown}: cannot open the database: {exc}") from None
    with closing(connection):
        cursor = connection.cursor()
        try:
            cursor.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
            try:
                yield cursor, connection
                cursor.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    connection.rollback()
                raise
        except sqlite3.Error as exc:
            raise _sqlite_error(target, exc) from None


def _sqlite_error(target: ScoresUrl, exc: sqlite3.Error) -> CloseprobError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return ScoresUnavailableError(
            f"{target.shown}: the database is locked by another writer (waited "
            f"{CONNECT_TIMEOUT_S} s); run again when it is done; nothing was written"
        )
    return ScoresDatabaseError(
        f"{target.shown}: the score table cannot be written ({text}); nothing was written. "
        f"If {target.path} is not a closeprob score database, move it aside or choose another --to"
    )


@contextmanager
def _postgres_transaction(target: ScoresUrl) -> Iterator[tuple[Any, Any]]:
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi

    try:
        connection = adbc_driver_postgresql.dbapi.connect(_with_timeout(target.url))
    except adbc_driver_manager.Error as exc:
        raise _postgres_error(target, exc, "cannot connect") from None
    with closing(connection):
        try:
            try:
                with closing(connection.cursor()) as cursor:
                    yield cursor, connection
                connection.commit()
            except BaseException:
                with suppress(adbc_driver_manager.Error):  # a dead connection cannot roll back
                    connection.rollback()
                raise
        except adbc_driver_manager.Error as exc:
            raise _postgres_error(target, exc, "the score table cannot be written") from None


def _postgres_error(target: ScoresUrl, exc: Exception, what: str) -> CloseprobError:
    """Retryable when the server does not answer or drops the connection; otherwise (login,
    permissions, a missing database) a user error."""
    text = str(exc)
    permanent = ("authentication failed", "does not exist", "permission denied", "no password")
    if any(words in text for words in permanent):
        return ScoresDatabaseError(f"{target.shown}: {what} ({_first_line(exc)}); fix the URL "
                                   "or the database's grants; nothing was written")  # fmt: skip
    return ScoresUnavailableError(
        f"{target.shown}: {what} ({_first_line(exc)}); start the server or check the network, "
        "then run again; nothing was written"
    )


def _with_timeout(url: str) -> str:
    """libpq waits for ever by default; a nightly job should fail in seconds and retry."""
    if "connect_timeout=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}connect_timeout={CONNECT_TIMEOUT_S}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return redact(lines[0] if lines else type(exc).__name__)[:300]


def read_scores(target: ScoresUrl, deal_id: str | None = None) -> pd.DataFrame:
    """The table's rows (of one deal, if given), oldest first; empty when there is no table."""
    if target.path is not None and not target.path.exists():
        return pd.DataFrame(columns=COLUMN_NAMES)
    with _transaction(target, read_only=True) as (cursor, _):
        if _schema_version(cursor, target) == 0:
            return pd.DataFrame(columns=COLUMN_NAMES)
        where, params = "", tuple[str, ...]()
        if deal_id is not None:
            mark = "?" if target.dialect == "sqlite" else "$1"
            where, params = f" WHERE deal_id = {mark}", (deal_id,)
        # JSON as its text in both dialects (SQLite keeps it as text).
        names = ", ".join(
            f"{n}::text" if k == "json" and target.dialect == "postgresql" else n
            for n, k, _ in COLUMNS
        )
        cursor.execute(f"SELECT {names} FROM {TABLE}{where} ORDER BY as_of, rank", params)
        return pd.DataFrame(cursor.fetchall(), columns=COLUMN_NAMES)
