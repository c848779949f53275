"""End to end on a trained store: Ctrl-C and SIGTERM stop `predict` and `train` in one line
(exit 130/143, the run KILLED, queue and aliases as before); the queue's MLflow artifact is the
bytes this run wrote; a full disk or a refused write leaves the previous queue byte for byte;
store errors inside a training run are one line and leave it FAILED; a failure in the champion
comparison registers nothing; queue CSV cells that would run as formulas are neutralised."""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

import closeprob.pipeline.challenge as challenge_module
from closeprob.pipeline.cli import main
from tests.conftest import copy_trained_crm

ROOT = Path(__file__).resolve().parents[2]
MODEL = "close-probability"
START_TIMEOUT_S = 900  # only a hang reaches it (a loaded machine imports and trains slowly)

# Replace `TARGET` (module.attr, or module.Class.method) by a function that announces itself
# through a marker file and waits to be stopped; then run the CLI.
HANG_HOOK = """
import importlib, os, runpy, signal, time
# Ctrl-C as a terminal's foreground job gets it: a suite started in the background (`cmd &`
# without job control) hands its children SIGINT ignored, which Python then keeps.
signal.signal(signal.SIGINT, signal.default_int_handler)
target = os.environ["CLOSEPROB_TEST_HANG"]
module_name, attr = target.rsplit(".", 1)
owner = importlib.import_module(module_name)
def hang(*args, **kwargs):
    open(os.environ["CLOSEPROB_TEST_MARKER"], "w").close()
    time.sleep(600)
setattr(owner, attr, hang)
runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def trained(trained_crm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's trained CRM; each test copies its store once more."""
    return copy_trained_crm(trained_crm, tmp_path_factory.mktemp("crm"), model={"num_threads": 1})


@pytest.fixture()
def store(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test's own copy of the trained store."""
    with (
        closing(sqlite3.connect(trained.parent / "mlflow.db")) as source,
        closing(sqlite3.connect(tmp_path / "mlflow.db")) as copy,
    ):
        source.backup(copy)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    mlflow.set_tracking_uri(uri)
    return uri


def _client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _aliases(uri: str) -> dict[str, str]:
    return {k: str(v) for k, v in _client(uri).get_registered_model(MODEL).aliases.items()}


def _versions(uri: str) -> list[str]:
    return sorted(str(v.version) for v in _client(uri).search_model_versions(f"name='{MODEL}'"))


def _runs(uri: str, experiment: str) -> list[mlflow.entities.Run]:
    found = _client(uri).get_experiment_by_name(experiment)
    if found is None:
        return []
    return _client(uri).search_runs([found.experiment_id], order_by=["attributes.start_time DESC"])


def _stop_while_hanging(
    uri: str, args: list[str], hang: str, number: signal.Signals, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Run the CLI through HANG_HOOK, send `number` once the hook fires; its exit and output."""
    marker = tmp_path / "ready"
    environment = os.environ | {
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_REGISTRY_URI": uri,
        "CLOSEPROB_TEST_HANG": hang,
        "CLOSEPROB_TEST_MARKER": str(marker),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", HANG_HOOK, *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not marker.exists():
            if process.poll() is not None:
                pytest.fail(f"exited {process.returncode} first:\n{process.communicate()}")
            if time.monotonic() > deadline:
                pytest.fail("the hook did not fire")
            time.sleep(0.05)
        process.send_signal(number)
        out, err = process.communicate(timeout=START_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.slow
def test_ctrl_c_during_predict_prints_one_line_marks_the_run_killed_and_keeps_the_queue(
    trained: Path, store: str, tmp_path: Path
) -> None:
    out = tmp_path / "queue.csv"
    predict = ["predict", "--config", str(trained), "--out", str(out)]
    assert main(predict) == 0
    before = out.read_bytes()
    done = _stop_while_hanging(store, predict, "mlflow.log_artifact", signal.SIGINT, tmp_path)
    print(f"Ctrl-C during predict: exit {done.returncode}, stderr {done.stderr!r}")
    assert done.returncode == 130
    assert done.stderr.startswith("stopped by SIGINT: nothing more was published")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert out.read_bytes() == before
    assert list(tmp_path.glob(".queue.csv.*.tmp")) == []
    assert _runs(store, "close-probability-predictions")[0].info.status == "KILLED"


@pytest.mark.slow
def test_sigterm_during_train_prints_one_line_marks_the_run_killed_and_moves_no_alias(
    trained: Path, store: str, tmp_path: Path
) -> None:
    before, versions = _aliases(store), _versions(store)
    done = _stop_while_hanging(
        store,
        ["train", "--config", str(trained)],
        "mlflow.pyfunc.log_model",
        signal.SIGTERM,
        tmp_path,
    )
    print(f"SIGTERM during train: exit {done.returncode}, stderr {done.stderr!r}")
    assert done.returncode == 143
    assert done.stderr.splitlines()[-1].startswith("stopped by SIGTERM")
    assert "Traceback" not in done.stderr
    assert _aliases(store) == before and _versions(store) == versions
    assert _runs(store, "close-probability")[0].info.status == "KILLED"


@pytest.mark.slow
def test_the_queue_artifact_is_the_bytes_this_run_wrote_even_if_another_run_renames_first(
    trained: Path, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "queue.csv"
    real = mlflow.log_artifact

    def another_run_publishes_first(local_path: str, *args: object, **kwargs: object) -> None:
        out.write_text("the other run's queue\n")  # run B's rename lands while A logs
        real(local_path, *args, **kwargs)

    monkeypatch.setattr(mlflow, "log_artifact", another_run_publishes_first)
    assert main(["predict", "--config", str(trained), "--out", str(out)]) == 0
    run = _runs(store, "close-probability-predictions")[0]
    logged = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="queue.csv", dst_path=str(tmp_path / "artifact")
        )
    )
    assert logged.read_bytes() == out.read_bytes()
    assert b"the other run's queue" not in logged.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "cannot write the file: No space left"),
        (PermissionError(errno.EACCES, "Permission denied"), "cannot write the file: Permission"),
    ],
    ids=["full-disk", "permission-denied"],
)
def test_a_queue_that_cannot_be_written_exits_2_and_keeps_the_previous_queue(
    failure: OSError,
    message: str,
    trained: Path,
    store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "queue.csv"
    assert main(["predict", "--config", str(trained), "--out", str(out)]) == 0
    before = out.read_bytes()
    real = pd.DataFrame.to_csv

    def fails_halfway(self: pd.DataFrame, path: object = None, *args: object, **kw: object) -> None:
        if str(path).endswith(".tmp"):
            real(self.head(len(self) // 2), path, *args, **kw)
            raise failure
        return real(self, path, *args, **kw)

    monkeypatch.setattr(pd.DataFrame, "to_csv", fails_halfway)
    capsys.readouterr()
    assert main(["predict", "--config", str(trained), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    day = next((tmp_path / "queue").glob("as_of_date=*"))  # the rerun's day: its partition's queue
    assert error.startswith(f"error: {day / out.name}: {message}") and error.count("\n") == 1
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.rglob("*tmp")] == []  # no temporary file or folder


@pytest.mark.slow
def test_queue_csv_cells_that_would_run_as_formulas_are_neutralised_and_parquet_keeps_them(
    trained: Path, store: str, tmp_path: Path
) -> None:
    deals = pd.read_csv(trained.parent / "deals.csv", dtype=str, keep_default_na=False)
    events = pd.read_csv(trained.parent / "interactions.csv", dtype=str, keep_default_na=False)
    # Open at the end, and created long before 2024-12-01: in both queues below.
    still_open = (deals["closed_at"] == "") & (deals["created_at"] < "2024-10-01")
    first_open = deals.loc[still_open, "deal_id"].iloc[0]
    evil = {first_open: '=HYPERLINK("http://evil.example","open me")'}
    deals["deal_id"] = deals["deal_id"].replace(evil)
    deals.loc[deals["deal_id"] == evil[first_open], "account_id"] = "+cmd|' /C calc'!A0"
    events["deal_id"] = events["deal_id"].replace(evil)
    deals.to_csv(tmp_path / "deals.csv", index=False)
    events.to_csv(tmp_path / "interactions.csv", index=False)
    data = [
        "--deals",
        str(tmp_path / "deals.csv"),
        "--interactions",
        str(tmp_path / "interactions.csv"),
        "--model",  # data from another folder would otherwise name their own model
        f"models:/{MODEL}@champion",
    ]
    earlier = ["--as-of", "2024-12-01"]  # a day before the second CSV run's (the data's end)
    for name in ("queue.csv", "raw.parquet"):
        out = ["--out", str(tmp_path / name)]
        assert main(["predict", "--config", str(trained), *data, *out, *earlier]) == 0
    cells = pd.read_csv(tmp_path / "queue.csv", dtype=str, keep_default_na=False)
    row = cells[cells["deal_id"].str.contains("HYPERLINK")].iloc[0]
    assert row["deal_id"] == "'" + evil[first_open]
    assert row["account_id"] == "'+cmd|' /C calc'!A0"
    assert not cells.map(lambda c: c[:1] in ("=", "+", "@", "\t", "\r")).any().any()
    raw = pd.read_parquet(tmp_path / "raw.parquet")
    assert evil[first_open] in set(raw["deal_id"])
    # A second CSV run, of a later day, reads the ids of the first back as the deals they are.
    assert (
        main(["predict", "--config", str(trained), *data, "--out", str(tmp_path / "queue.csv")])
        == 0
    )
    again = pd.read_csv(tmp_path / "queue.csv", dtype=str, keep_default_na=False)
    assert again.loc[again["deal_id"] == "'" + evil[first_open], "p_close_change"].iloc[0] != ""


@pytest.mark.slow
def test_a_full_disk_inside_the_training_run_is_one_line_and_leaves_the_run_failed(
    trained: Path, store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before, versions = _aliases(store), _versions(store)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mlflow, "log_table", disk_full)
    capsys.readouterr()
    assert main(["train", "--config", str(trained)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: tracking store {store}: the disk is full"), error
    assert error.count("\n") == 1
    failed = _runs(store, "close-probability")[0]
    assert failed.info.status == "FAILED" and "No space left" in failed.data.tags["error"]
    assert _aliases(store) == before and _versions(store) == versions
    assert mlflow.active_run() is None


@pytest.mark.slow
def test_a_failing_champion_comparison_registers_nothing_and_moves_no_alias(
    trained: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, versions = _aliases(store), _versions(store)
    runs = len(_runs(store, "close-probability"))

    def unknown_metric(*args: object, **kwargs: object) -> None:
        raise KeyError("test_value_captured_at_capasity")

    monkeypatch.setattr(challenge_module, "decide_promotion", unknown_metric)
    with pytest.raises(KeyError):
        main(["train", "--config", str(trained)])
    assert _aliases(store) == before and _versions(store) == versions
    assert len(_runs(store, "close-probability")) == runs  # it failed before its run began
