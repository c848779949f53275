"""The exports as the vendors document their other variants (fixtures written by
tests/fixtures/crm_vendors/make_exports.py into variants/; the Salesforce currency and field
history variants hold only the files that differ from salesforce/'s): each imports as the
plain export does, or is refused naming file, column and value."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from closeprob.pipeline.adapters import hubspot, salesforce
from closeprob.pipeline.errors import DataContractError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crm_vendors"
VARIANTS = FIXTURES / "variants"


def test_a_bulk_api_2_export_with_pipes_crlf_bom_and_z_times_imports_as_data_loaders() -> None:
    """Bulk API 2.0's columnDelimiter=PIPE, CRLF line ends, a byte-order mark, the weekly
    export's upper-case field names, `…000Z` times and a Description holding `|`, quotes and
    line breaks: the same deals, interactions, notes and config as the plain export."""
    plain = salesforce.adapt(FIXTURES / "salesforce")
    variant = salesforce.adapt(VARIANTS / "salesforce_bulk2")
    pd.testing.assert_frame_equal(variant.deals, plain.deals)
    pd.testing.assert_frame_equal(variant.interactions, plain.interactions)
    assert (variant.notes, variant.settings) == (plain.notes, plain.settings)


def test_a_multi_currency_hubspot_export_reads_the_amount_in_company_currency() -> None:
    plain = hubspot.adapt(FIXTURES / "hubspot")
    variant = hubspot.adapt(VARIANTS / "hubspot_currencies")
    assert "currency" not in variant.deals.columns  # one currency: nothing to convert
    amounts = plain.deals.set_index("deal_id")["amount"]
    pd.testing.assert_series_equal(variant.deals.set_index("deal_id")["amount"], amounts)
    assert any("Amount in company currency" in note for note in variant.notes)


def test_a_multi_currency_hubspot_export_without_the_company_amount_keeps_each_currency(
    tmp_path: Path,
) -> None:
    """Then the deals carry `currency`, and check refuses several currencies without
    data.currency_rates (tests/pipeline/test_plausibility.py)."""
    for path in (VARIANTS / "hubspot_currencies").glob("*.csv"):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame.drop(columns=["Amount in company currency"], errors="ignore").to_csv(
            tmp_path / path.name, index=False
        )
    deals = hubspot.adapt(tmp_path).deals
    assert sorted(deals["currency"].unique()) == ["EUR", "JPY", "USD"]


def test_an_excel_export_is_refused_saying_to_export_csv(tmp_path: Path) -> None:
    (tmp_path / "hubspot-crm-exports-all-deals-2024-12-31.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(DataContractError, match=r"deals-2024-12-31\.xlsx: an Excel workbook.*CSV"):
        hubspot.adapt(tmp_path)


def test_a_date_in_a_locale_format_is_refused_showing_it(tmp_path: Path) -> None:
    """HubSpot writes dates as the exporting user's settings say; `04/05/2024 2:22 PM` reads
    two ways (April 5 or May 4) and is refused, naming file, column and value."""
    for path in (FIXTURES / "hubspot").glob("*.csv"):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "Create Date" in frame.columns:
            frame.loc[0, "Create Date"] = "04/05/2024 2:22 PM"
        frame.to_csv(tmp_path / path.name, index=False)
    with pytest.raises(
        DataContractError,
        match=r"deals-2024-12-31\.csv: column 'Create Date'.*'04/05/2024 2:22 PM'",
    ):
        hubspot.adapt(tmp_path)


def test_a_multi_currency_salesforce_org_converts_at_the_dated_rate_of_the_close_date(
    tmp_path: Path,
) -> None:
    """DatedConversionRate.csv (advanced currency management): EUR at 0.90 then 0.95 from
    2024-01-01, JPY at 140 then 150; each opportunity's Amount / the rate in force on its
    CloseDate gives back the corporate (USD) amounts of the plain export."""
    plain = salesforce.adapt(FIXTURES / "salesforce")
    variant = salesforce.adapt(salesforce_variant("salesforce_currencies", tmp_path))
    assert variant.deals["currency"].unique().tolist() == ["USD"]
    pd.testing.assert_series_equal(variant.deals["amount"], plain.deals["amount"], rtol=1e-6)
    assert any("DatedConversionRate.csv" in note for note in variant.notes)


def copy_export(source: Path, target: Path, skip: tuple[str, ...] = ()) -> Path:
    for path in source.glob("*.csv"):
        if path.name not in skip:
            (target / path.name).write_bytes(path.read_bytes())
    return target


def salesforce_variant(name: str, target: Path, skip: tuple[str, ...] = ()) -> Path:
    """salesforce/'s export with the variant's files over it, in `target`."""
    copy_export(FIXTURES / "salesforce", target, skip)
    return copy_export(VARIANTS / name, target, skip)


def test_a_currency_without_a_rate_is_refused_naming_it_and_the_opportunity(
    tmp_path: Path,
) -> None:
    salesforce_variant("salesforce_currencies", tmp_path)
    opportunities = pd.read_csv(tmp_path / "Opportunity.csv", dtype=str, keep_default_na=False)
    opportunities.loc[4, "CurrencyIsoCode"] = "GBP"
    opportunities.to_csv(tmp_path / "Opportunity.csv", index=False)
    with pytest.raises(
        DataContractError,
        match=r"Opportunity\.csv: column 'CurrencyIsoCode' has 1 opportunities in a currency "
        r"with no rate in DatedConversionRate\.csv or CurrencyType\.csv \(first: 'GBP'.*Id '0065",
    ):
        salesforce.adapt(tmp_path)


def test_without_the_rate_objects_each_opportunity_keeps_its_currency(tmp_path: Path) -> None:
    skip = ("DatedConversionRate.csv", "CurrencyType.csv")
    deals = salesforce.adapt(salesforce_variant("salesforce_currencies", tmp_path, skip)).deals
    assert sorted(deals["currency"].unique()) == ["EUR", "JPY", "USD"]


def test_two_pipelines_keep_each_ones_stage_order_and_the_same_closes() -> None:
    """HubSpot's pipelines each have their own stages (`Date entered "<stage> (<pipeline>)"`):
    one numbering for both keeps each pipeline's order, and closes come from each one's closed
    stages."""
    plain = hubspot.adapt(FIXTURES / "hubspot")
    variant = hubspot.adapt(VARIANTS / "hubspot_pipelines")
    stages = variant.settings["data"]["stages"]  # type: ignore[index]
    for pipeline, order in {
        "Sales Pipeline": [
            "Appointment Scheduled", "Qualified to Buy", "Presentation Scheduled", "Contract Sent"
        ],
        "Enterprise": ["Discovery", "Security Review", "Legal Review", "Contract Sent"],
    }.items():  # fmt: skip
        numbers = [stages.index(f"{stage} ({pipeline})") for stage in order]
        assert numbers == sorted(numbers)
    pd.testing.assert_frame_equal(
        variant.deals.drop(columns="pipeline"), plain.deals.drop(columns="pipeline")
    )
    changes = variant.interactions["type"] == "stage_change"  # the variant has notes only
    assert changes.sum() == (plain.interactions["type"] == "stage_change").sum()


def test_an_org_exporting_opportunity_field_history_gets_the_same_stage_history(
    tmp_path: Path,
) -> None:
    """OpportunityFieldHistory (Field = StageName, OldValue → NewValue) instead of the
    OpportunityHistory object: the same deals and closes, the same stage changes, but for the
    creation stage of opportunities whose stage never changed (no tracked change to read it
    from: the current StageName is the export day's)."""
    plain = salesforce.adapt(FIXTURES / "salesforce")
    skip = ("OpportunityHistory.csv",)
    variant = salesforce.adapt(salesforce_variant("salesforce_field_history", tmp_path, skip))
    pd.testing.assert_frame_equal(variant.deals, plain.deals)
    columns = ["deal_id", "occurred_at", "type", "value"]

    def events(adapted: object) -> pd.DataFrame:
        frame = adapted.interactions[columns]  # type: ignore[attr-defined]
        return frame.sort_values(columns).reset_index(drop=True)

    missing = events(plain).merge(events(variant), how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"]
    assert (missing["type"] == "stage_change").all()
    per_deal = plain.interactions[plain.interactions["type"] == "stage_change"].groupby("deal_id")
    unchanged = per_deal.size()[lambda n: n == 1].index
    assert sorted(missing["deal_id"]) == sorted(unchanged)
    assert len(events(variant)) == len(events(plain)) - len(unchanged)


def test_deal_stages_exported_as_internal_values_still_date_each_close() -> None:
    """`Deal Stage` = `closedwon`, `Pipeline` = `default` (internal values), the `Date
    entered` headers as labels: a deal's stage is the one it entered last, so closes come from
    the history as with labels (not from the end of the Close Date)."""
    plain = hubspot.adapt(FIXTURES / "hubspot")
    variant = hubspot.adapt(VARIANTS / "hubspot_internal_values")
    pd.testing.assert_frame_equal(
        variant.deals.drop(columns="pipeline"), plain.deals.drop(columns="pipeline")
    )
    assert variant.settings["data"]["stages"] == plain.settings["data"]["stages"]  # type: ignore[index]
    assert any("0 closed deals without that column" in note for note in variant.notes)
