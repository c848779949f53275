"""The tracking store fails fast and in one line: a corrupt, locked, full or unreachable store
stops `train` before any data is read (exit 2), and MLflow's telemetry is off by default."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

import closeprob.pipeline.jobs.train as train_module
from closeprob.pipeline import store
from closeprob.pipeline.cli import main
from tests.conftest import write_small_crm

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_crm(tmp_path_factory.mktemp("crm"), 60)


@pytest.fixture()
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is checked before the work: training must not even start."""

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started although the store is unusable")

    monkeypatch.setattr(train_module, "train_close_model", fail)


def _store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    database = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{database}")
    return database


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    return error


@pytest.mark.usefixtures("no_training")
def test_a_corrupt_store_fails_before_training_in_one_line(
    crm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = _store(tmp_path, monkeypatch)
    database.write_bytes(b"this is not an sqlite database" * 100)
    assert main(["train", "--config", str(crm)]) == 2
    error = _one_line_error(capsys)
    assert "is not a readable SQLite database (corrupt?)" in error
    assert f"move {database} aside" in error


@pytest.mark.usefixtures("no_training")
def test_a_store_locked_by_another_writer_fails_before_training(
    crm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = _store(tmp_path, monkeypatch)
    monkeypatch.setattr(store, "LOCK_WAIT_S", 0.2)
    with closing(sqlite3.connect(database)) as other:
        other.execute("CREATE TABLE t (x)")
        other.execute("BEGIN EXCLUSIVE")
        assert main(["train", "--config", str(crm)]) == 2
    error = _one_line_error(capsys)
    assert "is locked by another writer" in error and "wait for the other job" in error


@pytest.mark.usefixtures("no_training")
def test_a_full_disk_fails_before_training(
    crm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _store(tmp_path, monkeypatch)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: usage._replace(free=5 * 2**20)
    )  # 5 MiB left
    assert main(["train", "--config", str(crm)]) == 2
    error = _one_line_error(capsys)
    assert "only 5 MiB free on the disk of" in error and "free some space" in error
    assert not (tmp_path / "mlflow.db").exists()


def test_an_unreachable_tracking_server_fails_quickly_saying_so(crm: Path) -> None:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_HTTP", "MLFLOW_REG"))
    }
    environment["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "train", "--config", str(crm)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,  # MLflow's own retries took 257 s
        check=False,
    )
    seconds = time.monotonic() - started
    print(f"unreachable server reported after {seconds:.1f} s (import included)")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "tracking server http://127.0.0.1:9 is unreachable (" in done.stderr
    assert "Connection refused" in done.stderr
    assert "make train" not in done.stderr


def test_the_cli_turns_telemetry_off_and_keeps_what_the_user_set(
    crm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "42")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    assert main(["promote", "--config", str(crm), "--rollback"]) == 2  # no store: a quick exit
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "42"  # the user's value is kept
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")  # opting in
    main(["promote", "--config", str(crm), "--rollback"])
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"


def test_mlflow_telemetry_is_off_in_a_fresh_cli_process() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_DISABLE_TELEMETRY"}
    script = (
        "import os, sys\n"
        "from closeprob.pipeline.cli import main\n"
        "try:\n    main(['promote', '--rollback'])\nexcept SystemExit:\n    pass\n"
        "from mlflow.telemetry.utils import is_telemetry_disabled\n"
        "print(os.environ['MLFLOW_DISABLE_TELEMETRY'], is_telemetry_disabled())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.split() == ["true", "True"], done.stderr


def test_the_tests_and_make_ui_turn_telemetry_off() -> None:
    assert os.environ.get("MLFLOW_DISABLE_TELEMETRY") in {"true", "True", "1"}
    makefile = (ROOT / "Makefile").read_text()
    assert "export MLFLOW_DISABLE_TELEMETRY ?= true" in makefile


@pytest.mark.parametrize(
    ("stop", "status"),
    [(KeyboardInterrupt(), "KILLED"), (OSError("disk full"), "FAILED")],
    ids=["ctrl-c", "error"],
)
def test_backtest_and_results_runs_end_killed_or_failed_like_train_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: BaseException, status: str
) -> None:
    """Every job's run goes through `tracked_run`: stopped while logging it ends KILLED, on an
    error FAILED with the error tagged, never left RUNNING."""
    import matplotlib.pyplot as plt
    import pandas as pd
    from mlflow import MlflowClient

    from closeprob.pipeline import runs
    from closeprob.pipeline.config import Config
    from tests.conftest import use_store

    use_store(monkeypatch, tmp_path)
    runs.prepare_store()

    def fail(*_: object, **__: object) -> None:
        raise stop

    monkeypatch.setattr(runs, "_log_figures", fail)
    weeks = pd.DataFrame({"as_of": ["2024-01-01"], "ece": [0.03]})
    figure = plt.figure()
    with pytest.raises(type(stop)):
        runs.log_backtest_run(weeks, ["ece"], {"ece": 0.02}, figure, Config(), 1)
    plt.close(figure)
    monkeypatch.setattr(runs.mlflow, "log_text", fail)
    with pytest.raises(type(stop)):
        runs.log_results_run(pd.DataFrame({"data set": ["x"]}))
    client = MlflowClient()
    for experiment in ("close-probability", "closeprob-results"):
        (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
        assert run.info.status == status
        assert ("error" in run.data.tags) == (status == "FAILED")


HALF_CREATED = ROOT / "tests" / "fixtures" / "half_created_store.sql"


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize("command", ["train", "promote"])
def test_a_store_left_half_created_by_a_killed_first_train_is_detected_with_advice(
    command: str,
    crm: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The fixture is the schema a real `kill -9` left while MLflow migrated a new store
    (tables of an old revision and a migration's temporary table): MLflow fails on it for
    ever ('table _alembic_tmp_latest_metrics already exists')."""
    database = _store(tmp_path, monkeypatch)
    with closing(sqlite3.connect(database)) as connection:
        connection.executescript(HALF_CREATED.read_text())
    flags = ["--version", "1"] if command == "promote" else []
    assert main([command, "--config", str(crm), *flags]) == 2
    error = _one_line_error(capsys)
    assert f"tracking store sqlite:///{database} was left half-created" in error
    assert "temporary table '_alembic_tmp_latest_metrics' is left behind" in error
    assert f"mv {database} {database}.broken" in error
