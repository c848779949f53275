"""Faults end to end: SIGKILL in the middle of `predict` and `train`, a training that fails inside
its MLflow run, two trainings at once on one SQLite store, and the UI bound to 127.0.0.1.

Subprocesses run `python -m pipeline` from the repo root against a temporary SQLite store. To kill
a run at an exact point, a small hook (`HANG_HOOK`, run with `python -c`) wraps one library call
so that the process announces itself through a marker file and then hangs; no library code is
edited.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from closeprob.pipeline.cli import main
from closeprob.pipeline.registry import load_registered_model
from tests.conftest import copy_trained_crm

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT, MODEL = "close-probability", "close-probability"
# Only a hang reaches these: a loaded 2-core machine running the suite on both cores can take
# minutes to import and train.
START_TIMEOUT_S = 900
RUN_TIMEOUT_S = 1200

HANG_HOOK = """
import os, runpy, time
hang, marker = os.environ["CLOSEPROB_TEST_HANG"], os.environ["CLOSEPROB_TEST_MARKER"]

def announce_and_hang():
    open(marker, "w").close()
    time.sleep(600)

if hang == "write":  # half the queue is in the temporary file, the rename has not happened
    import pandas as pd
    real_to_csv = pd.DataFrame.to_csv
    def to_csv(self, path_or_buf=None, *args, **kwargs):
        if str(path_or_buf).endswith(".tmp"):
            real_to_csv(self.head(len(self) // 2), path_or_buf, *args, **kwargs)
            announce_and_hang()
        return real_to_csv(self, path_or_buf, *args, **kwargs)
    pd.DataFrame.to_csv = to_csv
elif hang == "registered":  # the model is logged, the run is open, nothing is registered yet
    import mlflow.pyfunc
    real_log_model = mlflow.pyfunc.log_model
    def log_model(*args, **kwargs):
        info = real_log_model(*args, **kwargs)
        announce_and_hang()
        return info
    mlflow.pyfunc.log_model = log_model
runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Store:
    """A config over a small generated CRM and its own copy of a store with one training."""

    config: Path
    uri: str

    def env(self, **extra: str) -> dict[str, str]:
        return os.environ | {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_REGISTRY_URI": self.uri,
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)


@pytest.fixture(scope="module")
def trained(trained_crm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's trained CRM (1,500 generated deals, one training in
    `mlflow.db`) and a config pointing at it."""
    folder = tmp_path_factory.mktemp("crm")
    # One LightGBM thread per training: two run at once here, on a machine that may have 2 cores.
    return copy_trained_crm(
        trained_crm, folder, predict={"out": str(folder / "queue.csv")}, model={"num_threads": 1}
    )


def _copy_store(trained: Path, target: Path) -> str:
    with (
        closing(sqlite3.connect(trained.parent / "mlflow.db")) as source,
        closing(sqlite3.connect(target)) as copy,
    ):
        source.backup(copy)
    return f"sqlite:///{target}"


@pytest.fixture()
def store(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Each test gets its own copy of the trained store, so faults never leak between tests."""
    uri = _copy_store(trained, tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    return Store(config=trained, uri=uri)


def _start(
    store: Store, args: list[str], log: Path, hang: str | None = None
) -> subprocess.Popen[bytes]:
    """`python -m pipeline ARGS` from the repo root; with `hang`, through HANG_HOOK."""
    marker = log.with_suffix(".ready")
    command = [sys.executable, "-c", HANG_HOOK] if hang else [sys.executable, "-m", "pipeline"]
    extra = {"CLOSEPROB_TEST_HANG": hang, "CLOSEPROB_TEST_MARKER": str(marker)} if hang else {}
    with log.open("wb") as output:
        return subprocess.Popen(
            [*command, *args],
            cwd=ROOT,
            env=store.env(**extra),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:]


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def _wait_until_ready(process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the hook's marker file appears; fail with the output if the process exits first."""
    marker = log.with_suffix(".ready")
    deadline = time.monotonic() + START_TIMEOUT_S
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode} before the hook fired:\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"hook did not fire within {START_TIMEOUT_S} s:\n{_tail(log)}")
        time.sleep(0.05)


def _aliases(client: MlflowClient) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model(MODEL).aliases.items()}


def _versions(client: MlflowClient) -> list[str]:
    found = client.search_model_versions(f"name='{MODEL}'")
    return sorted((str(v.version) for v in found), key=int)


def _training_runs(client: MlflowClient) -> list[mlflow.entities.Run]:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=100
    )


def _leftovers(out: Path) -> list[str]:
    """Temporary files beside the queue and in its day partitions' staging folders."""
    return sorted(str(p.relative_to(out.parent)) for p in out.parent.rglob(f".{out.name}.*tmp"))


@pytest.mark.slow
def test_a_predict_killed_at_any_point_leaves_the_previous_queue_byte_for_byte(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "queue.csv"
    predict = ["predict", "--config", str(store.config), "--out", str(out)]
    assert main([*predict, "--as-of", "2024-11-24"]) == 0  # the day before the runs below
    before = out.read_bytes()
    # What a run that gets to the end leaves at `out` (the same model, data and previous day).
    finished = tmp_path / "finished" / "queue.csv"
    shutil.copytree(tmp_path / "queue", finished.parent / "queue")
    finished.write_bytes(before)
    assert main(["predict", "--config", str(store.config), "--out", str(finished)]) == 0
    complete = finished.read_bytes()
    assert complete != before  # a later day, compared with the one before

    for delay in (0.5, 1.5, 3.0):  # import, load the model, build features
        log = tmp_path / f"predict-after-{delay}s.log"
        process = _start(store, predict, log)
        try:
            time.sleep(delay)
            was_running = process.poll() is None
        finally:
            _kill(process)
        after = out.read_bytes()
        assert after in (before, complete), f"a partial queue after a kill at {delay} s"
        print(f"kill at {delay} s: running={was_running}, queue unchanged={after == before}")
        out.write_bytes(before)

    log = tmp_path / "predict-in-write.log"
    process = _start(store, predict, log, hang="write")
    try:
        _wait_until_ready(process, log)
        assert _leftovers(out), "the hook fired, so the temporary file should exist"
    finally:
        _kill(process)
    assert process.returncode == -signal.SIGKILL
    assert out.read_bytes() == before
    left = _leftovers(out)
    print(f"SIGKILL during the write left these temporary files behind: {left}")

    # A later run reads only `out` as the previous queue and replaces it whole; it removes its
    # own temporary files and the killed run's staging folder (its process is gone), and
    # leaves any other temporary file beside the queue alone.
    assert main(predict) == 0
    assert out.read_bytes() == complete
    staged = [name for name in left if name.startswith(f"{out.stem}/")]
    assert staged, "the killed run was writing its day's partition in a staging folder"
    assert _leftovers(out) == [name for name in left if name not in staged]
    assert not [p for p in (tmp_path / out.stem).iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_train_killed_mid_run_moves_no_alias(store: Store, tmp_path: Path) -> None:
    client = store.client()
    before = _aliases(client)
    assert before == {"champion": "1", "challenger": "1"}
    train = ["train", "--config", str(store.config)]

    early = tmp_path / "train-after-2s.log"
    process = _start(store, train, early)
    try:
        time.sleep(2.0)
    finally:
        _kill(process)
    assert _aliases(client) == before

    # Killed after its model is logged, inside the open run, before it is registered.
    log = tmp_path / "train-registered.log"
    process = _start(store, train, log, hang="registered")
    try:
        _wait_until_ready(process, log)
    finally:
        _kill(process)
    assert process.returncode == -signal.SIGKILL
    assert _aliases(client) == before
    killed = _training_runs(client)[0]
    print(
        f"killed train: run {killed.info.run_id} left {killed.info.status}, "
        f"versions now {_versions(client)}, aliases {_aliases(client)}"
    )
    assert killed.info.status == "RUNNING"  # SIGKILL gives MLflow no chance to end the run
    assert _versions(client) == ["1"]  # registration is the run's last step, with the aliases


@pytest.mark.slow
def test_a_training_that_fails_inside_its_mlflow_run_is_marked_failed_and_moves_no_alias(
    store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = store.client()
    before = _aliases(client)

    def registry_down(*args: object, **kwargs: object) -> None:
        raise MlflowException("model registry unavailable (injected by test_faults)")

    monkeypatch.setattr(mlflow.pyfunc, "log_model", registry_down)
    assert main(["train", "--config", str(store.config)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: MLflow at {store.uri}: model registry unavailable")
    assert error.count("\n") == 1, error

    assert mlflow.active_run() is None
    runs = _training_runs(client)
    assert len(runs) == 2
    failed = runs[0]
    assert failed.info.status == "FAILED"
    assert failed.info.end_time is not None
    assert "test_roc_auc" in failed.data.metrics  # it is the real training run, not an empty one
    assert runs[1].info.status == "FINISHED"
    assert _aliases(client) == before
    assert _versions(client) == ["1"]
    assert "registry unavailable" in failed.data.tags["error"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "existing",
    [
        pytest.param(True, id="existing-store"),
        pytest.param(
            False,
            id="new-store",
        ),
    ],
)
def test_two_trainings_at_once_on_one_sqlite_store_both_finish_and_register(
    existing: bool, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not existing:
        uri = f"sqlite:///{tmp_path / 'new.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
        store = Store(config=store.config, uri=uri)
    earlier = len(_versions(store.client())) if existing else 0
    logs = [tmp_path / f"train-{n}.log" for n in (1, 2)]
    processes = [_start(store, ["train", "--config", str(store.config)], log) for log in logs]
    try:
        for process in processes:
            process.wait(timeout=RUN_TIMEOUT_S)
    finally:
        for process in processes:
            _kill(process)
    for process, log in zip(processes, logs, strict=True):
        assert process.returncode == 0, f"exit {process.returncode}:\n{_tail(log)}"

    client = store.client()
    runs = _training_runs(client)
    assert len(runs) == earlier + 2
    assert all(run.info.status == "FINISHED" for run in runs)
    versions = _versions(client)
    assert versions == [str(n) for n in range(1, earlier + 3)]
    aliases = _aliases(client)
    assert aliases["champion"] in versions
    assert aliases["challenger"] in versions[-2:]
    printed = [re.findall(r"registered '[^']+' version \d+.*", log.read_text()) for log in logs]
    print(f"aliases {aliases}; the two runs printed {printed}")

    database = Path(store.uri.removeprefix("sqlite:///"))
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    loaded = load_registered_model(f"models:/{MODEL}@challenger")
    assert loaded.version == aliases["challenger"]


@pytest.mark.slow
def test_the_mlflow_ui_binds_to_localhost_only() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^ui:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert recipe is not None, "Makefile has no ui target"
    assert "--host 127.0.0.1" in recipe.group(1)
    assert "0.0.0.0" not in makefile

    packages = [ROOT / name for name in ("pipeline", "features", "models")]
    sources = [path for package in packages for path in package.rglob("*.py")]
    assert len(sources) > 10
    exposed = [str(p.relative_to(ROOT)) for p in sources if "0.0.0.0" in p.read_text()]
    assert exposed == []


@pytest.mark.slow
def test_an_unloadable_champion_never_blocks_a_healthy_challenger(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """The champion's booster no longer matches what was registered: the next training
    promotes its model and says why."""
    import json

    from closeprob.pipeline.model_artifact import DIGESTS_TAG

    client = store.client()
    digests = json.loads(client.get_model_version(MODEL, "1").tags[DIGESTS_TAG])
    digests["artifacts/closeprob/booster.txt"] = "0" * 64
    client.set_model_version_tag(MODEL, "1", DIGESTS_TAG, json.dumps(digests))
    assert main(["train", "--config", str(store.config)]) == 0
    assert _aliases(client) == {"champion": "2", "challenger": "2"}
    reason = _training_runs(client)[0].data.tags["promotion.reason"]
    assert reason.startswith("champion version 1 cannot be loaded, so the new model replaces it")
    assert "booster.txt was modified after registration" in reason
    assert "version 2 promoted to champion" in capsys.readouterr().out
