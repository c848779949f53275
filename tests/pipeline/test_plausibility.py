"""Plausibility through `check`: placeholder dates, events before creation, currencies, zero
amounts, a deal holding most events, ids that match only without leading zeros or '.0'."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from closeprob.pipeline.cli import main
from tests.conftest import write_small_crm


def _edit(
    config: Path,
    deals: Callable[[pd.DataFrame], None] | None = None,
    events: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    **data: object,
) -> Path:
    raw = yaml.safe_load(config.read_text())
    paths = raw["data"]["deals"], raw["data"]["interactions"]
    if deals is not None:
        frame = pd.read_csv(paths[0], dtype=str, keep_default_na=False)
        deals(frame)
        frame.to_csv(paths[0], index=False)
    if events is not None:
        frame = pd.read_csv(paths[1], dtype=str, keep_default_na=False)
        events(frame).to_csv(paths[1], index=False)
    raw["data"] |= data
    config.write_text(yaml.safe_dump(raw))
    return config


@pytest.fixture
def crm(tmp_path: Path) -> Path:
    return write_small_crm(tmp_path, 120)


def check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "--for", "predict", "--config", str(config)])
    return code, capsys.readouterr().out


def test_placeholder_creation_dates_are_an_error_naming_the_deals(
    crm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def placeholder(deals: pd.DataFrame) -> None:
        deals.loc[:2, "created_at"] = "1900-01-01 00:00:00"

    code, out = check(_edit(crm, deals=placeholder), capsys)
    assert code == 2
    assert "column 'created_at' holds placeholder dates in 3 rows (first: '1900-01-01'" in out


def test_one_timestamp_on_many_rows_is_a_warning(
    crm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def same(deals: pd.DataFrame) -> None:
        deals.loc[:19, "created_at"] = "2023-02-01 00:00:00"

    code, out = check(_edit(crm, deals=same), capsys)
    assert code == 0
    assert (
        "column 'created_at' has the same timestamp '2023-02-01 00:00:00+00:00' on 20 of 120" in out
    )


def test_events_before_creation_are_counted_and_kept_or_dropped(
    crm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load(crm.read_text())
    deals = pd.read_csv(raw["data"]["deals"])
    first = deals.iloc[0]

    def early(events: pd.DataFrame) -> pd.DataFrame:
        row = events.iloc[[0]].assign(
            deal_id=first["deal_id"],
            occurred_at=str(pd.Timestamp(first["created_at"]) - pd.Timedelta(days=60)),
        )
        return pd.concat([events, row])

    code, out = check(_edit(crm, events=early), capsys)
    assert code == 0
    assert "1 interactions are dated before their deal was created (up to 60 days" in out
    assert "kept: they count" in out
    code, out = check(_edit(crm, events_before_creation="drop"), capsys)
    assert "dropped (data.events_before_creation: drop)" in out


def test_several_currencies_without_rates_are_an_error_and_rates_convert(
    crm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def currencies(deals: pd.DataFrame) -> None:
        deals["currency"] = ["USD", "JPY", "EUR"] * 40

    code, out = check(_edit(crm, deals=currencies), capsys)
    assert code == 2
    assert "column 'currency' holds 3 currencies ('USD' 40 deals" in out
    assert "set data.currency_rates" in out
    rates = {"USD": 1.0, "EUR": 1.1, "JPY": 0.0067}
    code, out = check(_edit(crm, currency_rates=rates), capsys)
    assert code == 0, out
    code, out = check(_edit(crm, currency_rates={"USD": 1.0}), capsys)
    assert code == 2 and "currencies missing from data.currency_rates" in out


def test_all_zero_amounts_are_a_warning(crm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def zero(deals: pd.DataFrame) -> None:
        deals["amount"] = "0"

    code, out = check(_edit(crm, deals=zero), capsys)
    assert code == 0 and "column 'amount' is 0 on every one of the 120 deals" in out


def test_a_deal_holding_most_events_is_named(crm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def flood(events: pd.DataFrame) -> pd.DataFrame:
        one = events.iloc[[0] * 2000].reset_index(drop=True)
        start = pd.to_datetime(one["occurred_at"], utc=True, format="ISO8601")
        seconds = pd.to_timedelta(range(2000), unit="s")
        return pd.concat([events, one.assign(occurred_at=(start + seconds).astype(str))])

    _, out = check(_edit(crm, events=flood), capsys)
    assert "above data.max_deal_event_share 10%: a runaway integration" in out


def test_ids_that_match_only_without_leading_zeros_name_the_id_format(
    crm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def zeros(events: pd.DataFrame) -> pd.DataFrame:
        return events.assign(deal_id=events["deal_id"].str.replace("D", "", regex=False))

    def numbers(deals: pd.DataFrame) -> None:
        deals["deal_id"] = (
            deals["deal_id"].str.replace("D", "", regex=False).astype(int).astype(str)
        )

    code, out = check(_edit(crm, deals=numbers, events=zeros), capsys)
    assert code == 2
    assert "match a deal only after stripping leading zeros or '.0'" in out
    assert "an id written as a number" in out


def test_listed_deals_are_split_one_row_per_deal_and_per_file_mappings_apply(
    crm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load(crm.read_text())
    deals = pd.read_csv(raw["data"]["deals"], dtype=str, keep_default_na=False)
    two = f"{deals['deal_id'].iloc[0]};{deals['deal_id'].iloc[1]}"

    def renamed_deals(frame: pd.DataFrame) -> None:
        frame.rename(columns={"deal_id": "Record ID"}, inplace=True)

    def listed(events: pd.DataFrame) -> pd.DataFrame:
        events = events.rename(columns={"deal_id": "Associated Deal IDs"})
        events.loc[0, "Associated Deal IDs"] = two
        return events

    mapping = {
        "deals": {"deal_id": "Record ID"},
        "interactions": {"deal_id": "Associated Deal IDs"},
    }
    config = _edit(crm, deals=renamed_deals, events=listed, columns=mapping)
    code, out = check(config, capsys)
    assert code == 0, out
    assert (
        f"1 interactions list several deals in 'deal_id' (first: {two!r}): split into 2 rows" in out
    )


def test_crm_outcome_spellings_are_named_and_mapped_with_data_values(
    crm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def crm_words(deals: pd.DataFrame) -> None:
        deals["outcome"] = deals["outcome"].map(
            {"won": "Closed Won", "lost": "Closed Lost", "": "Contract Sent"}
        )

    code, out = check(_edit(crm, deals=crm_words), capsys)
    assert code == 2
    assert "column 'outcome' is not one of ['won', 'lost']" in out
    assert "(first value found: 'Closed" in out and "data.values: {outcome:" in out
    spellings = {"outcome": {"closed won": "won", "CLOSED LOST": "lost", "Contract Sent": None}}
    code, out = check(_edit(crm, values=spellings), capsys)
    assert code == 0, out


def test_a_stage_event_type_absent_from_the_data_is_named_with_the_types_found(
    crm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load(crm.read_text())
    raw["features"]["stage_event_type"] = "Stage Moved"
    crm.write_text(yaml.safe_dump(raw))
    code, out = check(crm, capsys)
    assert code == 0
    assert "no interaction is of features.stage_event_type 'Stage Moved'" in out
    assert "'stage_change'" in out
    raw["features"]["stage_event_type"] = "STAGE_CHANGE"  # compared case-folded: found
    crm.write_text(yaml.safe_dump(raw))
    _, out = check(crm, capsys)
    assert "no interaction is of features.stage_event_type" not in out
