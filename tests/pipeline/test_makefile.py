"""Makefile variables reach the shell as single words: `OUT='x; cmd'` is a file name, not a
command, and paths with spaces or quotes stay one argument. Checked by running the real
targets with a stand-in `closeprob` that records its arguments."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def stand_in(tmp_path: Path) -> Path:
    """A folder with a `closeprob` that writes its arguments to args.json."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "closeprob"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys, pathlib\n"
        f"pathlib.Path({str(tmp_path / 'args.json')!r}).write_text(json.dumps(sys.argv[1:]))\n"
    )
    script.chmod(0o755)
    ui = folder / "mlflow"  # records the telemetry setting it is started with
    ui.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys, pathlib\n"
        f"pathlib.Path({str(tmp_path / 'args.json')!r}).write_text(json.dumps("
        "[os.environ.get('MLFLOW_DISABLE_TELEMETRY'), *sys.argv[1:]]))\n"
    )
    ui.chmod(0o755)
    return folder


def _make(stand_in: Path, *arguments: str) -> list[str]:
    # STAMP points at an up-to-date file, so make does not (re)install the virtual environment.
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT),
            f"BIN={stand_in}",
            f"STAMP={stand_in / 'closeprob'}",
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads((stand_in.parent / "args.json").read_text())


def test_a_shell_command_in_a_make_variable_is_not_run(stand_in: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    args = _make(stand_in, "predict", f"OUT=x.csv; touch {marker}", f"MODEL=m`touch {marker}`")
    assert not marker.exists(), "a command in OUT or MODEL ran"
    assert args[args.index("--out") + 1] == f"x.csv; touch {marker}"
    assert args[args.index("--model") + 1] == f"m`touch {marker}`"


def test_paths_with_spaces_and_quotes_stay_one_argument(stand_in: Path) -> None:
    args = _make(
        stand_in,
        "train",
        "DEALS=my data/deals.csv",
        "INTERACTIONS=it's here.csv",
        "CONFIG=configs/my config.yaml",
    )
    assert args == [
        "train",
        "--config",
        "configs/my config.yaml",
        "--deals",
        "my data/deals.csv",
        "--interactions",
        "it's here.csv",
    ]


def test_make_generate_passes_force_only_when_asked(stand_in: Path) -> None:
    assert "--force" not in _make(stand_in, "generate")
    assert _make(stand_in, "generate", "FORCE=1")[-1] == "--force"


def test_make_ui_turns_telemetry_off_unless_the_user_opts_in(
    stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    assert _make(stand_in, "ui")[0] == "true"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    assert _make(stand_in, "ui")[0] == "false"
