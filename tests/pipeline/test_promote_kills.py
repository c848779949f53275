"""`promote` and the train job's publication write the registry in an order that any kill
leaves rollback-correct (the history tag before the alias on a promotion): a failure is
injected after each registry write in turn, then `promote --rollback` must go back to the
champion before the current one, never "from version N to N". One real SIGKILL, between the
tag write and the alias move, too."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from closeprob.models.promotion import Decision
from closeprob.pipeline.champion import publish_version
from closeprob.pipeline.cli import main
from closeprob.pipeline.core import Challenge
from closeprob.pipeline.model_artifact import DIGESTS_TAG
from closeprob.pipeline.registry import LoggedModel
from tests.conftest import store_uri
from tests.pipeline.native_models import register_versions

ROOT = Path(__file__).resolve().parents[2]
MODEL = "close-probability"
CONFIG = ROOT / "configs" / "default.yaml"
WRITES = ("set_model_version_tag", "set_registered_model_alias", "set_registered_model_tag")


class Killed(BaseException):
    """A kill -9 stand-in: nothing after it runs, no handler catches it."""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with versions 1, 2, 3 of a tiny native model (made once per module)."""
    folder = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store_uri(folder))
        patch.setenv("MLFLOW_REGISTRY_URI", store_uri(folder))
        patch.chdir(folder)
        mlflow.set_tracking_uri(store_uri(folder))
        register_versions(3)
    return folder / "mlflow.db"


@pytest.fixture()
def registry(mlflow_sandbox: str, template: Path) -> Iterator[MlflowClient]:
    """Versions 1, 2, 3 (a copy of the template store); champion history 1 → 2 made by
    `promote`."""
    database = Path(mlflow_sandbox.removeprefix("sqlite:///"))
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(database)) as copy:
        source.backup(copy)
    mlflow.set_tracking_uri(mlflow_sandbox)
    client = MlflowClient(tracking_uri=mlflow_sandbox, registry_uri=mlflow_sandbox)
    assert main(["promote", "--config", str(CONFIG), "--version", "1"]) == 0
    assert main(["promote", "--config", str(CONFIG), "--version", "2"]) == 0
    yield client


def _champion(client: MlflowClient) -> str:
    return str(client.get_registered_model(MODEL).aliases["champion"])


def _kill_after_write(monkeypatch: pytest.MonkeyPatch, step: int) -> list[str]:
    """Raise Killed right after the `step`-th registry write (1-based); the names written."""
    done: list[str] = []
    for name in WRITES:
        real = getattr(MlflowClient, name)

        def write(self: MlflowClient, *args: object, _real=real, _name=name, **kw: object) -> None:
            _real(self, *args, **kw)
            done.append(_name)
            if len(done) == step:
                raise Killed(f"killed after {_name}")

        monkeypatch.setattr(MlflowClient, name, write)
    return done


@pytest.mark.parametrize("step", [1, 2])
def test_a_promote_killed_after_any_write_leaves_a_history_that_rolls_back_correctly(
    step: int,
    registry: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with monkeypatch.context() as patch:
        done = _kill_after_write(patch, step)
        with pytest.raises(Killed):
            main(["promote", "--config", str(CONFIG), "--version", "3"])
    champion = _champion(registry)
    assert champion == ("2" if done == ["set_registered_model_tag"] else "3")
    capsys.readouterr()
    assert main(["promote", "--config", str(CONFIG), "--rollback"]) == 0
    expected = {"2": "from version 2 to 1", "3": "from version 3 to 2"}[champion]
    assert expected in capsys.readouterr().out
    assert _champion(registry) == {"2": "1", "3": "2"}[champion]


def _logged(client: MlflowClient) -> LoggedModel:
    """The model behind version 1, as the train job has it before registering."""
    version = client.get_model_version(MODEL, "1")
    return LoggedModel(version.source, json.loads(version.tags[DIGESTS_TAG]))


@pytest.mark.parametrize("step", [1, 2, 3])
def test_a_train_publication_killed_after_any_write_leaves_a_history_that_rolls_back(
    step: int,
    registry: MlflowClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The writes: challenger alias, the new version's history tag, champion alias.
    promoted = Challenge(Decision(True, "better"), {})
    with monkeypatch.context() as patch:
        done = _kill_after_write(patch, step)
        with pytest.raises(Killed):
            publish_version(_logged(registry), MODEL, promoted)
    aliases = {k: str(v) for k, v in registry.get_registered_model(MODEL).aliases.items()}
    assert aliases["champion"] in {"2", "4"}
    assert (aliases["champion"] == "4") == (
        done[-1:] == ["set_registered_model_alias"] and step == 3
    )
    capsys.readouterr()
    assert main(["promote", "--config", str(CONFIG), "--rollback"]) == 0
    back_to = {"2": "1", "4": "2"}[aliases["champion"]]
    assert f"to {back_to}" in capsys.readouterr().out


HANG_BEFORE_ALIAS = """
import os, runpy, time
from mlflow import MlflowClient
real = MlflowClient.set_registered_model_alias
def hang(self, name, alias, version):
    if alias == "champion":
        open(os.environ["CLOSEPROB_TEST_MARKER"], "w").close()
        time.sleep(600)
    return real(self, name, alias, version)
MlflowClient.set_registered_model_alias = hang
runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
"""


def test_a_promote_killed_9_between_the_tag_and_the_alias_rolls_back_correctly(
    registry: MlflowClient,
    tmp_path: Path,
    mlflow_sandbox: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = tmp_path / "ready"
    environment = os.environ | {
        "MLFLOW_TRACKING_URI": mlflow_sandbox,
        "MLFLOW_REGISTRY_URI": mlflow_sandbox,
        "CLOSEPROB_TEST_MARKER": str(marker),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HANG_BEFORE_ALIAS,
            "promote",
            "--config",
            str(CONFIG),
            "--version",
            "3",
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the hook did not fire"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait(timeout=60)
    history = registry.get_registered_model(MODEL).tags["champion_history"]
    assert json.loads(history) == [1, 2, 3]
    assert _champion(registry) == "2"
    capsys.readouterr()
    assert main(["promote", "--config", str(CONFIG), "--rollback"]) == 0
    assert "champion rolled back from version 2 to 1" in capsys.readouterr().out
