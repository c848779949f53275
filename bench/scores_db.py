"""The score table's bulk path on PostgreSQL: ADBC (what closeprob uses) against psycopg 3's
COPY and pandas' `to_sql`, for one day of scores, each into an emptied table in one transaction.

    .venv/bin/pip install 'psycopg[binary]'            # the comparison only; not a dependency
    .venv/bin/python bench/scores_db.py --url postgresql://user@127.0.0.1:5432/db --rows 100000

Every path writes the same rows (deal_scores' 19 columns) into a temporary table and then
`INSERT … SELECT … ON CONFLICT DO UPDATE` into deal_scores, as `write_scores` does. Times are
the median of `--repeats` runs, printed, never asserted.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import pandas as pd

from closeprob.pipeline import scores_db
from closeprob.pipeline.scores_db import COLUMN_NAMES, TABLE, parse_scores_url, write_scores


def make_queue(rows: int, seed: int = 0) -> pd.DataFrame:
    """A queue of `rows` open deals with realistic text lengths (two reasons each way)."""
    rng = np.random.default_rng(seed)
    p_close = rng.beta(2, 5, rows)
    value = rng.lognormal(10, 1, rows)
    reason = "more meetings in the last 30 days than usual: 4; recent reply from the buyer: yes"
    return pd.DataFrame(
        {
            "rank": np.arange(1, rows + 1),
            "deal_id": [f"D{i:07d}" for i in range(rows)],
            "account_id": [f"A{i % 5000:05d}" for i in range(rows)],
            "owner_id": [f"U{i % 200:03d}" for i in range(rows)],
            "p_close": p_close,
            "deal_value": value,
            "value_source": "amount",
            "expected_value": p_close * value,
            "tier": rng.choice(["A", "B", "C"], rows),
            "reasons_up": reason,
            "reasons_down": reason,
            "p_close_change": rng.normal(0, 0.05, rows),
            "tier_change": "",
            "model_version": "3",
            "as_of": pd.Timestamp("2024-06-01", tz="UTC"),
        }
    )


def with_adbc(url: str, queue: pd.DataFrame) -> None:
    write_scores(parse_scores_url(url), queue, pd.Timestamp.now(tz="UTC"))


def with_psycopg_copy(url: str, queue: pd.DataFrame) -> None:
    """COPY … FROM STDIN in text format from one CSV buffer (psycopg's fastest pure path)."""
    import psycopg

    rows = scores_db.score_rows(queue, pd.Timestamp.now(tz="UTC"))
    buffer = io.StringIO()
    rows.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S%z")
    names = ", ".join(COLUMN_NAMES)
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE incoming (LIKE {TABLE}) ON COMMIT DROP")
        with cursor.copy(f"COPY incoming ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())
        cursor.execute(
            f"INSERT INTO {TABLE} ({names}) SELECT {names} FROM incoming "
            "ON CONFLICT (deal_id, as_of, model_version) DO NOTHING"
        )


def with_to_sql(url: str, queue: pd.DataFrame) -> None:
    """pandas through SQLAlchemy (psycopg 3 dialect), multi-row INSERTs of 1,000."""
    from sqlalchemy import create_engine

    rows = scores_db.score_rows(queue, pd.Timestamp.now(tz="UTC"))
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        rows.to_sql(TABLE, connection, if_exists="append", index=False, method="multi",
                    chunksize=1000)  # fmt: skip
    engine.dispose()


def empty_table(url: str) -> None:
    import adbc_driver_postgresql.dbapi

    with adbc_driver_postgresql.dbapi.connect(url) as connection:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE}")
        connection.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    queue = make_queue(args.rows)
    with_adbc(args.url, queue.head(10))  # creates the schema
    print(f"{args.rows:,} rows × {len(COLUMN_NAMES)} columns into {TABLE}, median of "
          f"{args.repeats} (seconds)")  # fmt: skip
    for name, write in [("ADBC adbc_ingest + INSERT … ON CONFLICT", with_adbc),
                        ("psycopg 3 COPY (csv) + INSERT … SELECT", with_psycopg_copy),
                        ("pandas to_sql (SQLAlchemy, multi-row)", with_to_sql)]:  # fmt: skip
        times = []
        for _ in range(args.repeats):
            empty_table(args.url)
            start = time.perf_counter()
            write(args.url, queue)
            times.append(time.perf_counter() - start)
        print(f"  {name:<42}{statistics.median(times):>8.2f}")


if __name__ == "__main__":
    main()
