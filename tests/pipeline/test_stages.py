"""Stage names in a stage change's value, mapped by data.stages; the queue's stage label."""

from __future__ import annotations

import pandas as pd

from closeprob.pipeline.stages import stage_labels, stage_names_as_numbers
from closeprob.pipeline.validate import Problems

STAGES = ("Prospecting", "Proposal", "Negotiation")


def events(*values: object) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "deal_id": [f"D{i}" for i in range(len(values))],
            "type": "stage_change",
            "value": pd.Series(list(values), dtype=object),
        }
    )


def test_stage_names_become_their_position_in_data_stages_in_any_case() -> None:
    problems = Problems(strict=False)
    mapped = stage_names_as_numbers(
        events(" proposal", "NEGOTIATION", "1"), STAGES, "i.csv", problems
    )
    assert mapped["value"].tolist() == ["2.0", "3.0", "1"]
    assert problems.found == []


def test_a_stage_name_missing_from_data_stages_is_an_error_showing_it() -> None:
    problems = Problems(strict=False)
    stage_names_as_numbers(events("Proposal", "Contract Sent"), STAGES, "i.csv", problems)
    (message,) = problems.errors
    assert (
        "'value' names a stage missing from data.stages in 1 rows (first: 'Contract Sent'"
        in message
    )
    assert "deal_id 'D1'" in message and "'Negotiation'" in message


def test_without_data_stages_values_are_left_to_validation() -> None:
    frame = events("Proposal")
    assert stage_names_as_numbers(frame, (), "i.csv", Problems(strict=False)) is frame


def test_the_queue_labels_a_stage_number_with_its_name() -> None:
    labels = stage_labels(pd.Series([2.0, float("nan"), 7.0, 1.5]), STAGES)
    assert labels.tolist() == ["Proposal", "", "7", "1.5"]
