"""Against a real `mlflow server` on 127.0.0.1: train through MLFLOW_TRACKING_URI, read the
runs and aliases back through MLflow's REST API, promote and roll back, shut the server down."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from closeprob.pipeline.cli import main
from tests.conftest import write_small_crm


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    process = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail("mlflow server exited during start-up")
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not answer /health within 90 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_training_against_a_real_server_is_readable_through_the_rest_api(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    config = write_small_crm(tmp_path, 1200)
    assert main(["train", "--config", str(config)]) == 0
    assert main(["train", "--config", str(config)]) == 0

    api = f"{server}/api/2.0/mlflow"
    experiment = _get(f"{api}/experiments/get-by-name?experiment_name=close-probability")
    runs = _post(
        f"{api}/runs/search", {"experiment_ids": [experiment["experiment"]["experiment_id"]]}
    )
    assert len(runs["runs"]) == 2
    metrics = {m["key"] for m in runs["runs"][0]["data"]["metrics"]}
    assert {"test_roc_auc", "test_value_captured_at_capacity"} <= metrics

    def aliases() -> dict[str, str]:
        model = _get(f"{api}/registered-models/get?name=close-probability")["registered_model"]
        return {a["alias"]: a["version"] for a in model["aliases"]}

    assert aliases() == {"champion": "1", "challenger": "2"}
    assert main(["promote", "--config", str(config), "--version", "2"]) == 0
    assert aliases()["champion"] == "2"
    assert main(["promote", "--config", str(config), "--rollback"]) == 0
    assert aliases()["champion"] == "1"
