"""The HubSpot adapter: won/lost from HubSpot's closed flags, stage history from the `Date
entered` columns, `;`-lists of associated deals, never an open deal's forecast Close Date.

Rules are checked on hand-built exports; the fixture export (tests/fixtures/crm_vendors) is
imported once and checked as data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from closeprob.pipeline.adapters.hubspot import EXPORT_DAY_FIELDS, adapt, stage_columns
from closeprob.pipeline.errors import DataContractError
from tests.conftest import utc, write_csv

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "crm_vendors" / "hubspot"
HEAD = (
    "Record ID,Deal Stage,Pipeline,Amount,Close Date,Create Date,Deal Type,Is Closed Won,"
    'Is Deal Closed?,"Date entered ""Qualified (Sales Pipeline)""",'
    '"Date entered ""Closed Won (Sales Pipeline)"""'
)


def export(folder: Path, deals: str, calls: str = "", head: str = HEAD) -> Path:
    write_csv(folder / "hubspot-crm-exports-all-deals-2024-06-30.csv", f"{head}\n{deals}")
    write_csv(
        folder / "hubspot-crm-exports-all-calls-2024-06-30.csv",
        "Record ID,Activity date,Call direction,Create date,Associated Deal IDs\n"
        + (calls or "900,2024-01-03 10:00,Outbound,2024-01-03 10:02,101\n"),
    )
    return folder


def test_won_and_lost_come_from_the_closed_flags_and_the_close_from_date_entered(
    tmp_path: Path,
) -> None:
    source = export(
        tmp_path,
        '101,Closed Won,Sales Pipeline,"12,500.00",2024-05-31 00:00,2024-01-02 09:00,New,'
        "true,true,2024-01-05 10:00,2024-03-01 16:30\n"
        "102,Qualified,Sales Pipeline,900,2024-01-10 00:00,2024-01-02 09:00,New,false,false,"
        "2024-01-05 10:00,\n",
    )
    deals = adapt(source).deals.set_index("deal_id")
    assert deals.loc["101", "outcome"] == "won"
    assert deals.loc["101", "closed_at"] == utc("2024-03-01T16:30")
    assert deals.loc["101", "amount"] == 12500.0
    # The open deal's Close Date (in the past here) is a forecast: never a close.
    assert pd.isna(deals.loc["102", "closed_at"]) and pd.isna(deals.loc["102", "outcome"])


def test_without_the_flags_the_stage_probability_decides_never_the_stage_name(
    tmp_path: Path,
) -> None:
    head = "Record ID,Deal Stage,Create Date,Close Date,Deal probability"
    source = export(
        tmp_path,
        "101,Signed,2024-01-02 09:00,2024-02-01 00:00,1.0\n"
        "102,Closed Won,2024-01-02 09:00,2024-02-01 00:00,0\n"
        "103,Demo,2024-01-02 09:00,2024-02-01 00:00,0.4\n",
        head=head,
    )
    outcome = adapt(source).deals.set_index("deal_id")["outcome"]
    assert outcome["101"] == "won" and outcome["102"] == "lost" and pd.isna(outcome["103"])


def test_no_flags_and_no_probability_is_refused_saying_what_to_export(tmp_path: Path) -> None:
    source = export(
        tmp_path, "101,Closed Won,2024-01-02 09:00\n", head="Record ID,Deal Stage,Create Date"
    )
    with pytest.raises(DataContractError, match=r"no 'Is Closed Won'.*never from a stage name"):
        adapt(source)


def test_date_entered_headers_are_read_in_both_forms() -> None:
    frame = pd.DataFrame(
        columns=[
            'Date entered "Contract Sent (Sales Pipeline)"',
            'Date entered "Demo" (Renewals)',
            'Date entered "Qualified"',
            'Date exited "Qualified"',
        ]
    )
    assert list(stage_columns(frame).values()) == [
        ("Contract Sent", "Sales Pipeline"),
        ("Demo", "Renewals"),
        ("Qualified", None),
    ]


def test_an_activity_on_two_deals_counts_for_both_and_one_on_none_is_counted(
    tmp_path: Path,
) -> None:
    source = export(
        tmp_path,
        "101,Qualified,Sales Pipeline,900,,2024-01-02 09:00,New,false,false,2024-01-05 10:00,\n"
        "102,Qualified,Sales Pipeline,900,,2024-01-02 09:00,New,false,false,2024-01-05 10:00,\n",
        calls=(
            "900,2024-01-03 10:00,Inbound,2024-01-03 10:02,101;102\n"
            "901,2024-01-04 10:00,Outbound,2024-01-04 10:02,101; 101\n"
            "902,2024-01-04 11:00,Outbound,2024-01-04 11:02,\n"
        ),
    )
    adapted = adapt(source)
    calls = adapted.interactions.query("type == 'call'")
    assert sorted(calls["deal_id"]) == ["101", "101", "102"]
    assert calls.query("deal_id == '102'")["direction"].tolist() == ["inbound"]
    assert any("1 activities with no associated deal" in note for note in adapted.notes)


def test_an_activity_file_that_names_no_kind_is_refused(tmp_path: Path) -> None:
    source = export(
        tmp_path, "101,Qualified,Sales Pipeline,1,,2024-01-02 09:00,New,false,false,,\n"
    )
    write_csv(
        tmp_path / "export.csv", "Record ID,Activity date,Associated Deal IDs\n1,2024-01-03,101\n"
    )
    with pytest.raises(DataContractError, match=r"export.csv.*no 'Activity type'"):
        adapt(source)


def test_the_fixture_export_offers_no_export_day_field_and_numbers_its_stages() -> None:
    adapted = adapt(FIXTURE)
    assert adapted.settings == {
        "data": {
            "attributes": ["deal_type"],
            "stages": [
                "Appointment Scheduled (Sales Pipeline)",
                "Qualified to Buy (Sales Pipeline)",
                "Presentation Scheduled (Sales Pipeline)",
                "Contract Sent (Sales Pipeline)",
                "Closed Lost (Sales Pipeline)",
                "Closed Won (Sales Pipeline)",
            ],
        },
        "value": {"segment": "deal_type"},
        "evaluation": {"segment": "deal_type"},
    }
    assert {"Deal Stage", "Deal probability", "Forecast category"} <= set(EXPORT_DAY_FIELDS)
    stages = adapted.interactions.query("type == 'stage_change'")
    assert sorted(stages["value"].unique()) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    # Every closed deal closed when it entered its closed stage, after its creation.
    closed = adapted.deals.dropna(subset=["closed_at"])
    assert (closed["closed_at"] >= closed["created_at"]).all()
    assert adapted.deals["outcome"].value_counts().to_dict() == {"lost": 214, "won": 155}
