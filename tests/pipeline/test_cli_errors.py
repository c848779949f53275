"""Each bad input through the real CLI: exit code 2, a message naming the file and the problem
on stderr, and nothing written (no MLflow store, no queue, no model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from closeprob.pipeline.cli import main

H = "deal_id,created_at,closed_at,outcome,amount\n"
GOOD_DEALS = H + "D1,2024-01-01,,,100\n"
GOOD_EVENTS = "deal_id,occurred_at,type\nD1,2024-01-02,call\n"

CASES = {
    "empty file": ("", GOOD_EVENTS, r"deals\.csv: the file is empty"),
    "semicolons": (H.replace(",", ";") + "D1;2024-01-01;;;1\n", GOOD_EVENTS, r"';'-separated"),
    "missing column": (
        "deal_id,created_at,outcome\nD1,2024-01-01,\n",
        GOOD_EVENTS,
        r"missing required column 'closed_at'",
    ),
    "misspelt column": (
        "deal_id,created_on,closed_at,outcome\nD1,2024-01-01,,\n",
        GOOD_EVENTS,
        r"did you mean 'created_on'",
    ),
    "duplicate id": (
        H + "D7,2024-01-01,,,1\nD7,2024-01-02,,,2\n",
        GOOD_EVENTS,
        r"'deal_id' is duplicated in 2 rows",
    ),
    "bad timestamp": (
        H + "D1,01/02/2024,,,1\n",
        GOOD_EVENTS,
        r"unparseable timestamps \(first value: '01/02/2024'\)",
    ),
    "closed before created": (
        H + "D1,2024-02-01,2024-01-01,won,1\n",
        GOOD_EVENTS,
        r"'closed_at' is before 'created_at'",
    ),
    "bad outcome": (
        H + "D1,2024-01-01,2024-02-01,maybe,1\n",
        GOOD_EVENTS,
        r"'outcome' is not one of",
    ),
    "outcome on open deal": (H + "D1,2024-01-01,,won,1\n", GOOD_EVENTS, r"set on an open deal"),
    "negative amount": (H + "D1,2024-01-01,,,-5\n", GOOD_EVENTS, r"'amount' is negative"),
    "text amount": (H + "D1,2024-01-01,,,ten\n", GOOD_EVENTS, r"'amount' is not numeric"),
    "infinite amount": (H + "D1,2024-01-01,,,inf\n", GOOD_EVENTS, r"'amount' is infinite"),
    "year 9999": (H + "D1,9999-12-31,,,1\n", GOOD_EVENTS, r"outside 1900–2199"),
    "unknown deal": (
        GOOD_DEALS,
        GOOD_EVENTS + "D9,2024-01-03,call\n",
        r"interactions\.csv: column 'deal_id' names deals missing",
    ),
    "bad direction": (
        GOOD_DEALS,
        "deal_id,occurred_at,type,direction\nD1,2024-01-02,call,up\n",
        r"'direction' is not one of",
    ),
    "too few outcomes": (
        H + "D1,2024-01-01,2024-02-01,won,1\n",
        GOOD_EVENTS,
        r"training needs at least 40 of each",
    ),
}


@pytest.mark.parametrize(("deals", "events", "message"), CASES.values(), ids=list(CASES))
def test_bad_input_exits_2_with_the_message_and_writes_nothing(
    deals: str,
    events: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the default store would land in tmp_path
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    (tmp_path / "deals.csv").write_text(deals)
    (tmp_path / "interactions.csv").write_text(events)
    # Own data without the built-in CRM's attributes and segments (configs/default.yaml's).
    config = {
        "data": {"deals": "deals.csv", "interactions": "interactions.csv", "attributes": []},
        "evaluation": {"segment": None},
        "value": {"segment": None},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    before = sorted(p.name for p in tmp_path.iterdir())

    assert main(["train", "--config", "config.yaml"]) == 2

    error = capsys.readouterr().err
    # Data warnings, if any, come before the error (which may list several problems).
    assert any(line.startswith("error: ") for line in error.splitlines()), error
    assert "Traceback" not in error
    assert re.search(message, error), error
    assert sorted(p.name for p in tmp_path.iterdir()) == before
