"""Small frame builders and the MLflow sandbox every test runs in."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

# Before any test imports MLflow (its telemetry starts at import); the CLI sets the same.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Before LightGBM loads OpenMP: with the suite on every core (pytest-xdist), threads that spin
# while they wait take the CPU the other worker's tests need.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# No example database nor caches in the checkout (.hypothesis/): hypothesis keeps its home in a
# temporary folder, so the suite leaves the checkout as it was.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="closeprob-hypothesis-"))
# No deadline: an example's wall time says nothing on a loaded machine or with the suite on
# every core (speed is measured in bench/, never in tests).
settings.register_profile("closeprob", database=None, deadline=None)
settings.load_profile("closeprob")

CHECKOUT = Path(__file__).resolve().parents[1]
# Created by running Python and the tools themselves, not by what a test does.
TOOL_FILES = {"__pycache__", ".venv", ".pytest_cache", ".ruff_cache", ".mypy_cache", "*.egg-info"}


def checkout_files() -> set[str]:
    """What the checkout holds beyond its tracked files (git's untracked and ignored entries,
    folders collapsed) and every file of its own MLflow store, with sizes and times."""
    listed = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        check=False,
    )
    entries = {
        line[3:].rstrip("/")
        for line in listed.stdout.splitlines()
        if line[:2] in ("??", "!!")
        and not any(Path(line[3:]).match(tool) for tool in TOOL_FILES)
        and not set(Path(line[3:]).parts) & TOOL_FILES
    }
    for name in ("mlruns", "mlflow.db", "outputs", "data"):
        store = CHECKOUT / name
        files = [store] if store.is_file() else sorted(store.rglob("*")) if store.is_dir() else []
        entries |= {
            f"{f.relative_to(CHECKOUT)}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files
        }
    return entries


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{path.relative_to(CHECKOUT)}:{stat.st_size}:{stat.st_mtime_ns}"


def _is_worker(session: pytest.Session) -> bool:
    """A pytest-xdist worker: the controller checks the checkout for the whole run."""
    return hasattr(session.config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _is_worker(session):
        return
    session.config.stash[CHECKOUT_BEFORE] = checkout_files()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test wrote into the checkout (its mlruns/, mlflow.db, outputs/,
    data/ or any new file): tests work in temporary folders only."""
    before = session.config.stash.get(CHECKOUT_BEFORE, None)
    if before is None:
        return
    written = sorted(checkout_files() - before)
    if written:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"error: the tests wrote into the checkout ({len(written)} entries, first: "
                f"{written[:5]}); a test must work in a temporary folder",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


CHECKOUT_BEFORE = pytest.StashKey[set[str]]()

# The modules that take longest, started first (seconds on one of 2 xdist workers, measured
# with `pytest --durations`, Dec 2026): with `make test` (`--dist loadfile
# --no-loadscope-reorder`) a module goes to one worker as a whole, and a long module started
# last would run alone while the other worker idles.
LONGEST_FIRST = (
    "tests/e2e/test_spark_engine.py",  # 167: one Spark session, every parity check
    "tests/e2e/test_spark_clean_workers.py",  # 185: a virtualenv and a Spark of its own
    "tests/e2e/test_faults.py",  # 101: trainings in subprocesses
    "tests/e2e/test_predict_end_to_end.py",  # 38
    "tests/pipeline/test_trust.py",  # 15
    "tests/e2e/test_interrupts_and_outputs.py",  # 66
    "tests/e2e/test_tracking_server.py",  # 47
    "tests/e2e/test_train_end_to_end.py",  # 41
    "tests/e2e/test_crm_vendor_exports.py",  # 27
    "tests/e2e/test_model_portable.py",  # 6: reuses the clean-workers test's virtualenv
    "tests/pipeline/test_backtest.py",  # 12
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The LONGEST_FIRST modules first, in that order; the rest as collected."""
    rank = {module: place for place, module in enumerate(LONGEST_FIRST)}

    def place(item: pytest.Item) -> int:
        module = item.path.relative_to(CHECKOUT).as_posix()
        return rank.get(module, len(rank))

    items.sort(key=place)


@pytest.fixture(autouse=True)
def mlflow_sandbox(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Point MLflow at a fresh temporary SQLite store; never the repo's mlflow.db."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    yield uri


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def make_deals(rows: list[dict[str, object]]) -> pd.DataFrame:
    """A typed deals frame from a few dicts; missing keys get contract defaults."""
    defaults = {
        "closed_at": None,
        "outcome": None,
        "amount": float("nan"),
        "owner_id": "U1",
        "account_id": "A1",
    }
    frame = pd.DataFrame([defaults | row for row in rows])
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["closed_at"] = pd.to_datetime(frame["closed_at"], utc=True)
    frame["amount"] = frame["amount"].astype(float)
    for column in ("deal_id", "outcome", "owner_id", "account_id"):
        frame[column] = frame[column].astype("str").where(frame[column].notna())
    return frame


def make_interactions(rows: list[dict[str, object]]) -> pd.DataFrame:
    """A typed interactions frame from a few dicts."""
    defaults = {"channel": "email", "direction": "outbound", "value": float("nan")}
    columns = ["deal_id", "occurred_at", "type", "channel", "direction", "value"]
    frame = pd.DataFrame([defaults | row for row in rows], columns=columns)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    frame["value"] = frame["value"].astype(float)
    for column in ("deal_id", "type", "channel", "direction"):
        frame[column] = frame[column].astype("str").where(frame[column].notna())
    return frame


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def write_small_crm(folder: Path, n_deals: int, **sections: dict[str, object]) -> Path:
    """The default config pointed at `folder`, with a generated CRM of `n_deals` deals (20
    interactions each) written there; `sections` update the config's sections. Returns the
    config's path."""
    from closeprob.pipeline.cli import main

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["root"] = "."  # relative paths (outputs) start from `folder`
    raw["data"] |= {
        name: str(folder / f"{name}.csv") for name in ("deals", "interactions", "truth")
    }
    raw["generate"] |= {"n_deals": n_deals, "n_interactions": 20 * n_deals}
    for name, updates in sections.items():
        raw[name] |= updates
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["generate", "--config", str(path)]) == 0
    return path


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """`name` in the temporary folder every pytest-xdist worker of this run shares (this
    process's own without xdist): what is expensive to build is built once per run."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


@dataclass(frozen=True)
class Shared:
    """A shared folder held under its lock: `built` when an earlier holder finished it."""

    folder: Path
    built: bool

    def mark_built(self) -> None:
        (self.folder / ".built").touch()


@contextmanager
def built_once(folder: Path) -> Iterator[Shared]:
    """Hold `folder`'s lock (one worker at a time); a folder left unfinished by a holder that
    failed is emptied, so the next holder builds it again."""
    with open(folder.with_name(f"{folder.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            built = (folder / ".built").is_file()
            if not built:
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
            yield Shared(folder, built)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local Spark session (2 cores) shared by every Spark test: starting one takes tens of
    seconds and about 2 GiB. Without Java the tests fail, saying how to install it."""
    from closeprob.pipeline.config import SparkConfig
    from closeprob.pipeline.spark.session import SparkUnavailableError, spark_session

    try:
        session = spark_session(SparkConfig(master="local[2]", driver_memory="1g"))
    except SparkUnavailableError as exc:
        pytest.fail(f"the Spark engine's tests need Java and pyspark: {exc}")
    # Every pass groups by at most 7 deal buckets: Spark's default 200 shuffle partitions made
    # a queue of the tests' 1,500 deals take 20 s instead of 4 (CLI runs in a test reuse this
    # session). The subprocess Spark of test_spark_clean_workers.py keeps Spark's defaults.
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    session.stop()


def outside_env() -> dict[str, str]:
    """This process's environment without what would put the checkout's or this virtualenv's
    packages on another Python's path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="session")
def model_python(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """The Python of a fresh virtualenv (`python -m venv`) with only a model's requirements
    installed (`pip install -r`; pip's cache makes it quick): where closeprob is not installed.
    Built once per requirements text in a test run, whichever xdist worker asks first (the
    portable-model and Spark tests share it)."""

    def build(requirements: Path) -> Path:
        text = requirements.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        with built_once(shared_folder(tmp_path_factory, f"model_venv-{digest}")) as venv:
            python = venv.folder / "bin" / "python"
            if not venv.built:
                subprocess.run([sys.executable, "-m", "venv", str(venv.folder)], check=True)
                install = subprocess.run(
                    # --no-compile: what is checked is that these requirements alone load and
                    # score the model, not the byte-code of every installed module.
                    [
                        str(python),
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--no-compile",
                        "-r",
                        str(requirements),
                    ],
                    capture_output=True,
                    text=True,
                    env=outside_env(),
                    check=False,
                )
                assert install.returncode == 0, install.stderr[-3000:]
                venv.mark_built()
        return python

    return build


def store_uri(folder: Path) -> str:
    """The SQLite tracking store a test keeps in `folder`."""
    return f"sqlite:///{folder / 'mlflow.db'}"


def use_store(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Track and register into `folder`'s store for the rest of the test."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri(folder))
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store_uri(folder))


def train_small_crm(folder: Path, n_deals: int, **sections: dict[str, object]) -> Path:
    """`write_small_crm`, then one `train` through the CLI into `folder`'s own store (the
    test's sandbox store is left as it was). Returns the config's path."""
    from closeprob.pipeline.cli import main

    path = write_small_crm(folder, n_deals, **sections)
    with pytest.MonkeyPatch.context() as patch:
        use_store(patch, folder)
        assert main(["train", "--config", str(path)]) == 0
    return path


SHARED_DEALS = 1500


@pytest.fixture(scope="session")
def trained_crm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One small generated CRM (1,500 deals, the default config) trained once per test run
    through the CLI into its own store (the first xdist worker to ask trains, the other waits
    and reads it): version 1, champion and challenger. What `train` printed is kept beside it
    (`train.out`). Returns the config's path.

    Read-only: a test that predicts, trains, or changes the data or the registry works on its
    own `copy_trained_crm`. The session ends in an error if the store changed."""
    import io
    from contextlib import redirect_stdout

    from closeprob.pipeline.cli import main

    with built_once(shared_folder(tmp_path_factory, "trained_crm")) as crm:
        folder = crm.folder
        database, trained = folder / "mlflow.db", folder / "mlflow.db.sha256"
        if not crm.built:
            path = write_small_crm(folder, SHARED_DEALS)
            printed = io.StringIO()
            with pytest.MonkeyPatch.context() as patch, redirect_stdout(printed):
                use_store(patch, folder)
                assert main(["train", "--config", str(path)]) == 0
            (folder / "train.out").write_text(printed.getvalue())
            trained.write_text(hashlib.sha256(database.read_bytes()).hexdigest())
            crm.mark_built()
    yield folder / "config.yaml"
    if hashlib.sha256(database.read_bytes()).hexdigest() != trained.read_text():
        pytest.fail(f"a test wrote into the shared trained store {database}; use copy_trained_crm")


def copy_trained_crm(trained: Path, folder: Path, **sections: dict[str, object]) -> Path:
    """`trained`'s CRM as `folder`'s own: its data files and its store copied (an SQLite
    backup; the registered model's artifacts stay where they were, read-only, and new runs
    log theirs into `folder`), the config pointed at them with `sections` updating its
    sections. Returns the copy's config path."""
    import shutil
    import sqlite3
    from contextlib import closing

    raw = yaml.safe_load(trained.read_text())
    for name in ("deals", "interactions", "truth"):
        raw["data"][name] = str(shutil.copy(raw["data"][name], folder / f"{name}.csv"))
    for name, updates in sections.items():
        raw[name] |= updates
    with (
        closing(sqlite3.connect(trained.parent / "mlflow.db")) as source,
        closing(sqlite3.connect(folder / "mlflow.db")) as copy,
    ):
        source.backup(copy)
        # New runs log their artifacts beside this copy, as a store made in `folder` would.
        shared, own = (place.resolve() / "mlruns" for place in (trained.parent, folder))
        copy.execute(
            "UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)",
            (shared.as_uri(), own.as_uri()),
        )
        copy.commit()
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


POSTGRES_INSTALL = "apt-get update && apt-get install -y postgresql"


def postgres_binaries() -> Path:
    """The folder of Debian's PostgreSQL server programs (initdb, pg_ctl), newest first."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if not found:
        pytest.fail(
            f"the score table's tests need a PostgreSQL server; install it: {POSTGRES_INSTALL}"
        )
    return found[0].parent


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the session: initdb + pg_ctl in a temporary folder on a free
    local port (as the `postgres` user when the tests run as root: PostgreSQL refuses root),
    trust authentication, stopped and removed at the end."""
    import shutil
    import subprocess
    import tempfile

    binaries = postgres_binaries()
    folder = Path(tempfile.mkdtemp(prefix="closeprob-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        import pwd

        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_owner, *command], check=True, capture_output=True, timeout=120)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "closeprob",
            "--no-sync")  # fmt: skip
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l",
            str(folder / "server.log"), "-w", "start")  # fmt: skip
        yield f"postgresql://closeprob@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
