"""The Salesforce adapter: won/lost from IsClosed/IsWon, closes from the stage history, never an
open deal's forecast CloseDate, never an export-day field, activities on opportunities only.

Rules are checked on hand-built exports of a few records; the fixture export (written by
tests/fixtures/crm_vendors/make_exports.py) is imported once and checked as data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from closeprob.pipeline.adapters.salesforce import EXPORT_DAY_FIELDS, adapt
from closeprob.pipeline.config import load_config
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.jobs.generate import run_import
from tests.conftest import utc, write_csv

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "crm_vendors" / "salesforce"
OPP = "Id,AccountId,OwnerId,StageName,Amount,CloseDate,Type,LeadSource,IsClosed,IsWon,CreatedDate"
T0 = "2024-01-02T09:00:00.000+0000"


def export(folder: Path, opportunities: str, history: str = "", tasks: str = "") -> Path:
    write_csv(folder / "Opportunity.csv", f"{OPP}\n{opportunities}")
    if history:
        write_csv(
            folder / "OpportunityHistory.csv", f"OpportunityId,StageName,CreatedDate\n{history}"
        )
    write_csv(
        folder / "Task.csv",
        "Id,WhatId,TaskSubtype,CallType,IsClosed,CreatedDate,CompletedDateTime\n"
        + (tasks or f"00T1,0065g00000000AAAAA,Call,Outbound,true,{T0},{T0}\n"),
    )
    return folder


def test_won_and_lost_come_from_the_crm_flags_never_from_the_stage_name(tmp_path: Path) -> None:
    # 'Signed' is a won stage, 'Closed Won' a lost one in this org: only the flags say so.
    source = export(
        tmp_path,
        "0065g00000000AAAAA,001A,005A,Signed,100,2024-02-01,New,Web,true,true,"
        f"{T0}\n0065g00000000BBAAA,001A,005A,Closed Won,100,2024-02-01,New,Web,true,false,{T0}\n",
    )
    deals = adapt(source).deals.set_index("deal_id")
    assert deals.loc["0065g00000000AAAAA", "outcome"] == "won"
    assert deals.loc["0065g00000000BBAAA", "outcome"] == "lost"


def test_an_open_deals_forecast_close_date_is_never_its_closed_at(tmp_path: Path) -> None:
    source = export(
        tmp_path,
        f"0065g00000000AAAAA,001A,005A,Qualification,100,2024-01-05,New,Web,false,false,{T0}\n",
    )
    deals = adapt(source).deals
    assert deals["closed_at"].isna().all() and deals["outcome"].isna().all()


def test_a_close_is_when_the_history_last_entered_a_closed_stage_not_an_earlier_reopened_one(
    tmp_path: Path,
) -> None:
    source = export(
        tmp_path,
        f"0065g00000000AAAAA,001A,005A,Closed Won,100,2024-06-30,New,Web,true,true,{T0}\n",
        "0065g00000000AAAAA,Prospecting,2024-01-02T09:00:00.000+0000\n"
        "0065g00000000AAAAA,Closed Lost,2024-02-01T10:00:00.000+0000\n"
        "0065g00000000AAAAA,Qualification,2024-03-01T10:00:00.000+0000\n"
        "0065g00000000AAAAA,Closed Won,2024-04-01T10:00:00.000+0000\n"
        "0065g00000000AAAAA,Closed Won,2024-04-03T10:00:00.000+0000\n",
    )
    adapted = adapt(source)
    assert adapted.deals["closed_at"].iloc[0] == utc("2024-04-01T10:00:00")
    stages = adapted.interactions[adapted.interactions["type"] == "stage_change"]
    # Four changes of stage (the amount edit repeating 'Closed Won' is not one).
    assert len(stages) == 4


def test_a_closed_deal_without_history_closes_at_the_end_of_its_close_date(tmp_path: Path) -> None:
    source = export(
        tmp_path,
        f"0065g00000000AAAAA,001A,005A,Closed Lost,100,2024-03-05,New,Web,true,false,{T0}\n",
    )
    assert adapt(source).deals["closed_at"].iloc[0] == utc("2024-03-05T23:59:59")


def test_export_day_fields_are_never_columns_nor_attributes() -> None:
    adapted = adapt(FIXTURE)
    assert adapted.settings is not None
    offered = set(adapted.settings["data"]["attributes"])
    assert offered == {"opportunity_type", "lead_source", "account_industry", "account_country"}
    raw = pd.read_csv(FIXTURE / "Opportunity.csv", nrows=1).columns
    present = set(EXPORT_DAY_FIELDS) & set(raw)
    assert present >= {"StageName", "IsClosed", "IsWon", "Probability", "ForecastCategoryName"}
    assert not present & set(adapted.deals.columns)
    assert {"LastActivityDate", "LastModifiedDate"} <= set(EXPORT_DAY_FIELDS)


def test_activities_count_only_when_done_on_an_exported_opportunity_and_15_char_ids_match(
    tmp_path: Path,
) -> None:
    source = export(
        tmp_path,
        f"0065g00000000AAAAA,001A,005A,Qualification,100,,New,Web,false,false,{T0}\n",
        tasks=(
            # Done call, its WhatId in the 15-character form of reports.
            "00T1,0065g00000000AA,Call,Inbound,true,2024-01-03T09:00:00.000+0000,"
            "2024-01-03T09:30:00.000+0000\n"
            # Still to do.
            "00T2,0065g00000000AAAAA,Call,Outbound,false,2024-01-03T09:00:00.000+0000,\n"
            # Logged on the account.
            "00T3,0015g00000000AAAAA,Email,,true,2024-01-03T09:00:00.000+0000,\n"
        ),
    )
    adapted = adapt(source)
    events = adapted.interactions
    assert len(events) == 1
    row = events.iloc[0]
    assert (row["deal_id"], row["type"], row["direction"]) == (
        "0065g00000000AAAAA",
        "call",
        "inbound",
    )
    assert row["occurred_at"] == utc("2024-01-03T09:30:00")  # known when completed
    assert any(
        "1 open tasks" in note and "1 activities on records other" in note for note in adapted.notes
    )


def test_a_meeting_is_dated_when_held_and_one_not_yet_held_is_left_out(tmp_path: Path) -> None:
    source = export(
        tmp_path, f"0065g00000000AAAAA,001A,005A,Qualification,100,,New,Web,false,false,{T0}\n"
    )
    write_csv(
        tmp_path / "Event.csv",
        "Id,WhatId,Type,StartDateTime,CreatedDate\n"
        "00U1,0065g00000000AAAAA,Demo,2024-01-10T15:00:00.000+0000,2024-01-05T09:00:00.000+0000\n"
        "00U2,0065g00000000AAAAA,Meeting,2024-03-10T15:00:00.000+0000,2024-01-20T09:00:00.000+0000\n",
    )
    meetings = adapt(source).interactions.query("channel == 'meeting'")
    assert meetings["occurred_at"].tolist() == [utc("2024-01-10T15:00:00")]
    assert meetings["type"].tolist() == ["demo"]


def test_data_loader_upper_case_headers_and_deleted_rows(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "Opportunity.csv",
        "ID,STAGENAME,AMOUNT,CLOSEDATE,ISCLOSED,ISWON,CREATEDDATE,ISDELETED\n"
        f'0065g00000000AAAAA,Closed Won,"1200.50",2024-02-01,TRUE,True,{T0},false\n'
        f"0065g00000000BBAAA,Closed Won,5,2024-02-01,true,true,{T0},true\n",
    )
    write_csv(tmp_path / "Task.csv", f"ID,WHATID,CREATEDDATE\n00T1,0065g00000000AAAAA,{T0}\n")
    deals = adapt(tmp_path).deals
    assert deals["deal_id"].tolist() == ["0065g00000000AAAAA"]
    assert deals["amount"].tolist() == [1200.5]


def test_a_won_deal_that_is_not_closed_is_refused_naming_it(tmp_path: Path) -> None:
    source = export(tmp_path, f"0065g00000000AAAAA,001A,005A,Won,100,,New,Web,false,true,{T0}\n")
    with pytest.raises(
        DataContractError, match=r"IsWon true but IsClosed false.*'0065g00000000AAAAA'"
    ):
        adapt(source)


def test_a_flag_that_is_not_a_boolean_shows_the_value(tmp_path: Path) -> None:
    source = export(tmp_path, f"0065g00000000AAAAA,001A,005A,Won,100,,New,Web,maybe,true,{T0}\n")
    with pytest.raises(ValueError, match=r"'IsClosed' is not true/false.*'maybe'"):
        adapt(source)


def test_a_closed_deal_with_no_close_time_at_all_is_refused_naming_it(tmp_path: Path) -> None:
    source = export(tmp_path, f"0065g00000000AAAAA,001A,005A,Won,100,,New,Web,true,true,{T0}\n")
    with pytest.raises(DataContractError, match=r"no close time.*'0065g00000000AAAAA'"):
        adapt(source)


def test_a_missing_field_names_it_and_the_headers_found(tmp_path: Path) -> None:
    write_csv(tmp_path / "Opportunity.csv", f"Id,CreatedDate,IsClosed\nX,{T0},false\n")
    with pytest.raises(DataContractError, match=r"missing field \['IsWon'\].*'CreatedDate'"):
        adapt(tmp_path)


def test_import_writes_a_config_that_loads_with_the_tables_and_attributes(tmp_path: Path) -> None:
    run_import("salesforce", FIXTURE, tmp_path / "acme-sf")
    config = load_config(tmp_path / "acme-sf" / "config.yaml")
    assert config.name == "acme-sf"
    assert config.data.deals == (tmp_path / "acme-sf" / "deals.parquet").resolve()
    assert config.data.truth is None and config.data.adapter is None
    raw = yaml.safe_load((tmp_path / "acme-sf" / "config.yaml").read_text())
    assert raw["data"]["attributes"] == list(config.data.attributes)
    deals = pd.read_parquet(config.data.deals)
    assert set(config.data.attributes) <= set(deals.columns)
    # The fixture holds 31 open deals: none has a close, whatever its CloseDate says.
    opportunity = pd.read_csv(FIXTURE / "Opportunity.csv")
    assert int((~opportunity["IsClosed"]).sum()) == int(deals["closed_at"].isna().sum())


def test_a_config_with_adapter_and_source_imports_the_fresh_export_on_every_run(
    tmp_path: Path,
) -> None:
    from closeprob.pipeline.config import with_data_paths
    from closeprob.pipeline.jobs.generate import ensure_data

    run_import("salesforce", FIXTURE, tmp_path / "nightly")
    stale = pd.read_parquet(tmp_path / "nightly" / "deals.parquet").head(3)
    stale.to_parquet(tmp_path / "nightly" / "deals.parquet")
    config = load_config(tmp_path / "nightly" / "config.yaml")
    data = config.data.model_copy(update={"adapter": "salesforce", "source": FIXTURE})
    ensure_data(with_data_paths(config.model_copy(update={"data": data})))
    assert len(pd.read_parquet(tmp_path / "nightly" / "deals.parquet")) == 400


def test_import_runs_in_a_folder_without_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from closeprob.pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["import", "salesforce", "--source", str(FIXTURE), "--out", "sf"]) == 0
    assert (tmp_path / "sf" / "config.yaml").is_file()


def test_import_without_source_says_to_pass_it(capsys: pytest.CaptureFixture[str]) -> None:
    from closeprob.pipeline.cli import main

    assert main(["import", "hubspot"]) == 2
    assert "hubspot reads your own CRM export: pass --source DIR" in capsys.readouterr().err
