"""A registry you can trust, through the CLI: rollback walks the real history of champions,
versions are numbers ('02' is 2), a version is loaded before it becomes champion, and a registry
error is never read as "nothing there"."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from closeprob.pipeline.cli import main
from closeprob.pipeline.model_artifact import DIGESTS_TAG
from closeprob.pipeline.registry import alias_versions
from tests.conftest import store_uri
from tests.pipeline.native_models import MODEL, register_versions

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "default.yaml"
LEGACY = ROOT / "tests" / "fixtures" / "model_closeprob_0_1" / "model"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with versions 1, 2, 3 of the tiny native model and no champion (made once)."""
    folder = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store_uri(folder))
        patch.setenv("MLFLOW_REGISTRY_URI", store_uri(folder))
        patch.chdir(folder)  # the artifacts go to this folder's mlruns/
        mlflow.set_tracking_uri(store_uri(folder))
        register_versions(3)
    return folder / "mlflow.db"


@pytest.fixture()
def client(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MlflowClient]:
    """This test's own copy of the template store (the artifacts stay shared, read-only)."""
    with (
        closing(sqlite3.connect(template)) as source,
        closing(sqlite3.connect(tmp_path / "mlflow.db")) as copy,
    ):
        source.backup(copy)
    uri = store_uri(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)
    yield MlflowClient(tracking_uri=uri, registry_uri=uri)


def _promote(*flags: str) -> int:
    return main(["promote", "--config", str(CONFIG), *flags])


def _champion(client: MlflowClient) -> str:
    return str(client.get_registered_model(MODEL).aliases["champion"])


def test_rollback_after_champions_1_2_3_gives_2_then_1_then_a_clear_error(
    client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    for version in ("1", "2", "3"):
        assert _promote("--version", version) == 0
    capsys.readouterr()
    assert _promote("--rollback") == 0
    assert "champion rolled back from version 3 to 2" in capsys.readouterr().out
    assert _promote("--rollback") == 0
    assert "champion rolled back from version 2 to 1" in capsys.readouterr().out
    assert _champion(client) == "1"
    assert _promote("--rollback") == 2
    error = capsys.readouterr().err
    assert "version 1 is the first champion on record" in error
    assert "no earlier champion to roll back to" in error
    assert _champion(client) == "1"


def test_a_promotion_after_a_rollback_is_rolled_back_to_the_champion_it_replaced(
    client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    for flags in (["--version", "1"], ["--version", "2"], ["--rollback"], ["--version", "3"]):
        assert _promote(*flags) == 0
    capsys.readouterr()
    assert _promote("--rollback") == 0
    assert "from version 3 to 1" in capsys.readouterr().out


def test_promote_version_02_is_version_2_and_leaves_its_history_alone(
    client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _promote("--version", "1") == 0
    assert _promote("--version", "02") == 0
    assert "champion is now version 2 (was version 1)" in capsys.readouterr().out
    assert _champion(client) == "2"
    assert _promote("--version", "2") == 0  # the champion again: nothing is rewritten
    history = json.loads(client.get_registered_model(MODEL).tags["champion_history"])
    assert history == [1, 2]


@pytest.mark.parametrize("text", ["two", "0", "-1", "2.5"])
def test_a_version_that_is_not_a_whole_number_is_refused(
    text: str, client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _promote("--version", text) == 2
    assert (
        f"version {text!r} is not a registry version (a whole number ≥ 1)"
        in capsys.readouterr().err
    )


def test_promoting_a_version_that_does_not_exist_says_so(
    client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _promote("--version", "9") == 2
    assert f"registered model {MODEL!r} has no version 9" in capsys.readouterr().err


def test_a_version_whose_files_changed_is_not_promoted_and_the_champion_stays(
    client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _promote("--version", "1") == 0
    digests = json.loads(client.get_model_version(MODEL, "2").tags[DIGESTS_TAG])
    digests["artifacts/closeprob/booster.txt"] = "0" * 64  # as if the file had changed since
    client.set_model_version_tag(MODEL, "2", DIGESTS_TAG, json.dumps(digests))
    assert _promote("--version", "2") == 2
    error = capsys.readouterr().err
    assert (
        "version 2 of 'close-probability' cannot be loaded, so the champion did not move" in error
    )
    assert "artifacts/closeprob/booster.txt was modified after registration" in error
    assert _champion(client) == "1"


def test_a_version_whose_files_are_gone_is_not_promoted(
    client: MlflowClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = Path(
        mlflow.artifacts.download_artifacts(f"models:/{MODEL}/1", dst_path=str(tmp_path / "gone"))
    )
    version = client.create_model_version(MODEL, source=str(gone)).version
    shutil.rmtree(gone)
    assert _promote("--version", "1") == 0
    assert _promote("--version", str(version)) == 2
    assert "cannot be loaded, so the champion did not move" in capsys.readouterr().err
    assert _champion(client) == "1"


def test_a_version_registered_by_an_earlier_release_is_not_promoted_and_migrate_is_named(
    client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    version = client.create_model_version(MODEL, source=str(LEGACY)).version
    assert _promote("--version", str(version)) == 2
    error = capsys.readouterr().err
    assert "registered by an earlier closeprob release" in error
    assert f"closeprob migrate-model models:/{MODEL}/{version} --trust-pickle" in error


def test_a_registry_error_is_never_read_as_no_champion(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _promote("--version", "1") == 0

    def denied(self: MlflowClient, name: str) -> None:
        raise MlflowException("caller may not read this model", error_code="PERMISSION_DENIED")

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "get_registered_model", denied)
        with pytest.raises(MlflowException, match="may not read"):
            alias_versions(MODEL)
        assert _promote("--version", "2") == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "caller may not read this model" in error
    assert _champion(client) == "1"


def test_a_missing_registered_model_reads_as_no_aliases(client: MlflowClient) -> None:
    assert alias_versions("no-such-model") == {}


def test_a_registry_kept_by_closeprob_0_2_rolls_back_along_its_version_tags(
    client: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """0.2 kept one step back on each champion's version; the chain is the history."""
    client.set_model_version_tag(MODEL, "2", "previous_champion", "1")
    client.set_model_version_tag(MODEL, "3", "previous_champion", "2")
    client.set_registered_model_alias(MODEL, "champion", "3")
    assert _promote("--rollback") == 0
    assert _promote("--rollback") == 0
    assert "from version 2 to 1" in capsys.readouterr().out


def test_registry_writes_hold_a_lock_another_job_waits_for(client: MlflowClient) -> None:
    import fcntl

    from closeprob.pipeline.store import registry_writes, sqlite_path, tracking_uri

    lock = Path(f"{sqlite_path(tracking_uri())}.registry.lock")
    # Another job's own open of the lock cannot take it while the writes go on.
    with registry_writes(), lock.open("a") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with lock.open("a") as other:  # released once the writes are done
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_an_alias_another_job_inserted_first_is_moved_on_a_second_try(
    client: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two trainings publishing at once on one store: MLflow reads "no alias", the other job
    inserts it, this job's insert fails on the unique key; it sets the alias again."""
    from closeprob.pipeline.champion import set_alias

    real = MlflowClient.set_registered_model_alias
    calls: list[str] = []

    def racing(self: MlflowClient, name: str, alias: str, version: str) -> None:
        calls.append(version)
        if len(calls) == 1:
            real(self, name, alias, "1")  # the other job's insert lands first
            raise MlflowException(
                "(sqlite3.IntegrityError) UNIQUE constraint failed: "
                "registered_model_aliases.name, registered_model_aliases.alias"
            )
        real(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", racing)
    set_alias(MODEL, "challenger", "2")
    assert calls == ["2", "2"]
    assert str(client.get_registered_model(MODEL).aliases["challenger"]) == "2"

    def broken(self: MlflowClient, name: str, alias: str, version: str) -> None:
        raise MlflowException("the registry is read-only")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", broken)
    with pytest.raises(MlflowException, match="read-only"):
        set_alias(MODEL, "challenger", "3")  # any other error is not retried
