"""Is the tracking store usable? Checked before a job starts its work, so a corrupt, locked,
full or unreachable store fails in a second with one line, not after the training. Store
errors met later are one line too (`store_error_message`), and `tracked_run` ends every run
it starts: FINISHED with what it publishes, FAILED on an error, KILLED on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path

from closeprob.pipeline.errors import CloseprobError
from closeprob.pipeline.signals import Terminated, held_signals

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
LOCK_WAIT_S = 10.0  # another job's write lasts well under a second; a held lock is not that
MIN_FREE_BYTES = 200 * 2**20  # a model, its artifacts and figures take a few MiB; margin kept

# Environment defaults for every entry point, kept when the user has set them. Telemetry is
# off unless the user opts in (MLFLOW_DISABLE_TELEMETRY=false). A server that does not answer
# fails in about 20 s (one retry, 10 s timeout) instead of MLflow's minutes of retries.
MLFLOW_ENVIRONMENT_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


class StoreError(CloseprobError):
    """The tracking store cannot be used: missing, corrupt, locked, full or unreachable."""


def set_mlflow_environment_defaults() -> None:
    """Before MLflow is imported (telemetry starts at import)."""
    for name, value in MLFLOW_ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(name, value)


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else a SQLite store `mlflow.db` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def prepare_store() -> None:
    """Point MLflow at the store, creating a new SQLite store's tables under a file lock.

    Two jobs starting on a new store would both run MLflow's table migrations and one would
    crash; with the lock the second waits until the first has made the tables.
    """
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    if not uri.startswith("sqlite:///"):
        return
    database = Path(uri.removeprefix("sqlite:///"))
    with open(f"{database}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            MlflowClient().search_experiments(max_results=1)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def registry_writes() -> Iterator[None]:
    """One job at a time writes the registry of a SQLite store (a file lock beside it, which
    the kernel releases when its holder dies). MLflow sets an alias by reading, then inserting:
    two trainings publishing at once on one new store both inserted, and one ended in `UNIQUE
    constraint failed` (exit 2) after its whole training. The lock also keeps a promotion's
    history tag and its alias move together. A server's store: `set_alias` retries instead."""
    database = sqlite_path(tracking_uri())
    if database is None:
        yield
        return
    with open(f"{database}.registry.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_store(create: bool) -> None:
    """The store can take this job's writes; `create`: a missing SQLite store may be created
    (a job that only reads a model from the store must not create an empty one)."""
    uri = tracking_uri()
    database = sqlite_path(uri)
    if database is not None:
        _check_sqlite(uri, database, create)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri)


def _check_sqlite(uri: str, database: Path, create: bool) -> None:
    if not database.exists():
        if not create:
            raise StoreError(
                f"no tracking store at {database} ({uri}); run `make train` first, or set "
                "MLFLOW_TRACKING_URI to the store that holds your models"
            )
        _check_folder(uri, database.parent)
        return
    if not database.is_file():
        raise StoreError(f"tracking store {uri}: {database} is not a file")
    try:
        with closing(sqlite3.connect(database, timeout=LOCK_WAIT_S)) as connection:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            connection.execute("BEGIN IMMEDIATE")  # a write lock, released at once: no write
            connection.rollback()
            unfinished = unfinished_tables(connection)
    except sqlite3.Error as exc:
        raise StoreError(_explain(uri, exc)) from None
    if unfinished is not None:
        _check_half_created(uri, database, unfinished)
    _check_folder(uri, database.parent)


# Tables every store made by MLflow 3 has; one missing means its creation did not finish.
CORE_TABLES = {
    "experiments",
    "runs",
    "registered_models",
    "model_versions",
    "registered_model_aliases",
    "logged_models",
}


def unfinished_tables(connection: sqlite3.Connection) -> str | None:
    """Why a SQLite store's tables look half-made (MLflow's creation or migration was killed),
    or None: a migration's temporary table left behind, no schema version, core tables
    missing. An empty file is a store MLflow has not started (it makes it whole)."""
    tables = {
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    if not tables:
        return None
    leftover = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
    if leftover:
        return f"a migration's temporary table {leftover[0]!r} is left behind"
    if "alembic_version" not in tables:
        return "it has no schema version (alembic_version)"
    if connection.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 0:
        return "its schema version (alembic_version) is empty"
    missing = sorted(CORE_TABLES - tables)
    if missing:
        return f"tables {missing} are missing"
    return None


def _check_half_created(uri: str, database: Path, why: str) -> None:
    """A store whose tables look half-made is opened by MLflow once (under the creation lock:
    it finishes what it can); if that fails, one line that says what happened and what to do.
    """
    from mlflow import MlflowClient

    with open(f"{database}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        except Exception as exc:  # MLflow, alembic and SQLAlchemy each raise their own types
            raise StoreError(
                f"tracking store {uri} was left half-created ({why}; MLflow cannot open it: "
                f"{_first_line(exc, 120)}): a job was probably killed while it made the "
                f"store's tables. Move it aside (mv {database} {database}.broken) and run "
                "again; a new store is made"
            ) from None
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check_folder(uri: str, folder: Path) -> None:
    """The store's folder (and the artifact folder beside the working directory) can take a
    run: writable, with room left."""
    for where in dict.fromkeys([folder.resolve(), Path.cwd()]):
        if not where.is_dir():
            raise StoreError(f"tracking store {uri}: folder {where} does not exist; create it")
        if not os.access(where, os.W_OK):
            raise StoreError(f"tracking store {uri}: no write permission in {where}")
        free = shutil.disk_usage(where).free
        if free < MIN_FREE_BYTES:
            raise StoreError(
                f"tracking store {uri}: only {free / 2**20:.0f} MiB free on the disk of {where} "
                f"(a run needs about {MIN_FREE_BYTES / 2**20:.0f} MiB); free some space"
            )


def _check_server(uri: str) -> None:
    from mlflow import MlflowClient

    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # requests, urllib3 and MLflow each raise their own types
        raise StoreError(_explain(uri, exc)) from None


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit] + "…"


def _explain(uri: str, exc: BaseException) -> str:
    """One actionable line for a store error."""
    text = str(exc)
    database = sqlite_path(uri)
    if "is not a database" in text or "malformed" in text:
        return (
            f"tracking store {uri} is not a readable SQLite database (corrupt?): "
            f"{_first_line(exc)}; move {database} aside to start a new store, or set "
            "MLFLOW_TRACKING_URI to another store"
        )
    if "database is locked" in text:
        return (
            f"tracking store {uri} is locked by another writer (waited {LOCK_WAIT_S:.0f} s); "
            "wait for the other job (or close the sqlite3 session holding a transaction) and "
            "run again"
        )
    if (
        "disk is full" in text
        or "No space left" in text
        or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC)
    ):
        return f"tracking store {uri}: the disk is full ({_first_line(exc)}); free some space"
    if uri.startswith(("http://", "https://")):
        reason = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
        timed_out = "timed out" in text.lower() or "timeout" in text.lower()
        why = reason.group(0) if reason else ("no answer" if timed_out else _first_line(exc))
        return (
            f"tracking server {uri} is unreachable ({why}); start the server, or unset "
            "MLFLOW_TRACKING_URI to use sqlite:///mlflow.db"
        )
    return f"MLflow at {uri}: {_first_line(exc)}"


def store_error_message(exc: Exception) -> str | None:
    """The one line for an error raised by MLflow or its database/HTTP layers; None for
    anything else (a bug, which keeps its traceback)."""
    module = type(exc).__module__.split(".")[0]
    is_disk_full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    if module in {"mlflow", "sqlalchemy", "sqlite3", "requests", "urllib3"} or is_disk_full:
        return _explain(tracking_uri(), exc)
    return None


@contextmanager
def tracked_run(run_name: str, publish: Callable[[], None] | None = None) -> Iterator[str]:
    """An MLflow run (its id) that ends with what it publishes.

    `publish` (rename the queue, register and move aliases) runs after the block, with SIGINT
    and SIGTERM held, and the run ends FINISHED with it: the two happen together or neither.
    An error marks the run FAILED with the error in its `error` tag; Ctrl-C or SIGTERM marks it
    KILLED. Either way nothing was published.
    """
    import mlflow

    run = mlflow.start_run(run_name=run_name)
    run_id = run.info.run_id
    try:
        yield run_id
        with held_signals():
            if publish is not None:
                publish()
            mlflow.end_run("FINISHED")
    except (KeyboardInterrupt, Terminated):
        _end_run(run_id, "KILLED", None)
        raise
    except BaseException as exc:
        _end_run(run_id, "FAILED", exc)
        raise


def _end_run(run_id: str, status: str, exc: BaseException | None) -> None:
    """End the run if it is still ours and open; a store that fails here already failed."""
    import mlflow

    active = mlflow.active_run()
    if active is None or active.info.run_id != run_id:
        return
    if exc is not None:
        # Whoever opens the run sees why it failed.
        with suppress(Exception):  # the store itself may be what failed
            mlflow.set_tag("error", f"{type(exc).__name__}: {exc}"[:5000])
    with suppress(Exception):  # end_run leaves the active-run stack even when this fails
        mlflow.end_run(status)
