"""HubSpot's stage calculated properties (Date entered, Date exited, Latest time in,
Cumulative time in): earlier passes dated again where the export dates them, counted where
it cannot, and a time in stage that is not milliseconds refused naming it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from closeprob.pipeline.adapters.hubspot import adapt, find_deals_file
from closeprob.pipeline.adapters.hubspot_stages import stage_visits
from closeprob.pipeline.errors import DataContractError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crm_vendors"
VARIANT = FIXTURES / "variants" / "hubspot_stage_properties"
STAGE = "Contract Sent (Sales Pipeline)"


def test_an_earlier_pass_through_the_current_stage_is_dated_again_from_exit_and_latest_time() -> (
    None
):
    """The variant's deals went back from their last stage for an hour and forward again:
    HubSpot's Date entered holds the second entry only, the import dates the first again
    (where the plain export, without the other properties, has it)."""
    adapted = adapt(VARIANT)
    assert any("77 dated again" in note and "77 deals spent time" in note for note in adapted.notes)
    deals = pd.read_csv(find_deals_file(VARIANT), dtype=str)
    plain = pd.read_csv(find_deals_file(FIXTURES / "hubspot"), dtype=str).set_index("Record ID")
    entered, exited = f'Date entered "{STAGE}"', f'Date exited "{STAGE}"'
    again = deals[pd.to_datetime(deals[exited]) < pd.to_datetime(deals[entered])]
    assert len(again) > 0
    record = again["Record ID"].iloc[0]
    first_entry = pd.Timestamp(plain.loc[record, entered], tz="UTC")
    changes = adapted.interactions[
        (adapted.interactions["deal_id"] == record)
        & (adapted.interactions["type"] == "stage_change")
    ]
    assert first_entry in set(changes["occurred_at"])
    assert pd.Timestamp(again[entered].iloc[0], tz="UTC") in set(changes["occurred_at"])
    # Back and forth: the deal's stage numbers go down once.
    assert (changes.sort_values("occurred_at")["value"].diff() < 0).sum() == 1


def small_export(**columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"Record ID": ["1", "2"], **columns})


def test_a_current_stage_left_before_and_entered_again_gets_its_first_entry() -> None:
    rows = small_export(
        **{
            'Date entered "Demo"': ["2024-01-10 10:00", "2024-01-10 10:00"],
            'Date exited "Demo"': ["2024-01-05 10:00", "2024-01-12 10:00"],
            'Latest time in "Demo"': ["86400000", "172800000"],
            'Cumulative time in "Demo"': ["86400000", "345600000"],
        }
    )
    history, counts = stage_visits(rows, Path("deals.csv"), rows["Record ID"])
    first = history[(history["deal_id"] == "1")]["at"].sort_values().tolist()
    assert first == [
        pd.Timestamp("2024-01-04 10:00", tz="UTC"),
        pd.Timestamp("2024-01-10 10:00", tz="UTC"),
    ]
    # Deal 2 left Demo after two days but spent four there: an undated earlier pass.
    assert counts == {"earlier_dated": 1, "earlier_undated": 1}


def test_a_time_in_stage_written_out_is_refused_naming_file_column_and_value() -> None:
    rows = small_export(
        **{
            'Date entered "Demo"': ["2024-01-10 10:00", ""],
            'Latest time in "Demo"': ["1 day 2 hours", ""],
        }
    )
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'Latest time in \"Demo\"'.*'1 day 2 hours'.*Record ID '1'",
    ):
        stage_visits(rows, Path("deals.csv"), rows["Record ID"])
