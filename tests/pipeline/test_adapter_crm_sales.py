"""The CRM sales adapter: opportunities as deals, list prices as values, no account leak.

Rules are checked on a hand-built source of a few opportunities; the real files (when present)
are read once per module and checked as data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from closeprob.pipeline.adapters import Adapted
from closeprob.pipeline.adapters.crm_sales import (
    ACCOUNT_ATTRIBUTES,
    ACCOUNTS_FILE,
    ATTRIBUTES,
    ENGAGING_STAGE,
    PIPELINE_FILE,
    PRODUCTS_FILE,
    TEAMS_FILE,
    adapt,
)
from closeprob.pipeline.config import load_config
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.training import prepare_training_data
from closeprob.pipeline.validate import validate_deals, validate_interactions
from tests.conftest import utc, write_csv

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "crm-sales-opportunities"
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "crm_sales.yaml"

HEADER = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value"
PIPELINE = f"""{HEADER}
EARLY,Ann,GTX Basic,Acme,Won,2016-12-01,2017-03-01,540
WON,Ann,GTXPro,Acme,Won,2017-03-02,2017-04-01,4514
LOST,Bob,GTX Pro,Beta,Lost,2017-03-03,2017-03-20,0
OPEN,Bob,MG Special,,Engaging,2017-03-05,,
PROS,Ann,GTX Basic,,Prospecting,,,
"""
PRODUCTS = """product,series,sales_price
GTX Basic,GTX,550
GTX Pro,GTX,4821
MG Special,MG,55
"""
TEAMS = """sales_agent,manager,regional_office
Ann,Mia,Central
Bob,Leo,East
"""
ACCOUNTS = """account,sector,year_established,revenue,employees,office_location,subsidiary_of
Acme,technolgy,1996,1100.04,2822,United States,
Beta,medical,1999,251.41,495,Kenya,
"""


def write_source(folder: Path, pipeline: str = PIPELINE, products: str = PRODUCTS) -> Path:
    write_csv(folder / PIPELINE_FILE, pipeline)
    write_csv(folder / PRODUCTS_FILE, products)
    write_csv(folder / TEAMS_FILE, TEAMS)
    write_csv(folder / ACCOUNTS_FILE, ACCOUNTS)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Adapted:
    return adapt(write_source(tmp_path_factory.mktemp("crm_sales")))


def deal(adapted: Adapted, deal_id: str) -> pd.Series:
    return adapted.deals[adapted.deals["deal_id"] == deal_id].iloc[0]


# The rules, on a few hand-built opportunities


def test_won_lost_and_engaging_become_won_lost_and_open(tiny: Adapted) -> None:
    outcomes = tiny.deals.set_index("deal_id")["outcome"]
    assert outcomes["WON"] == "won"
    assert outcomes["LOST"] == "lost"
    assert pd.isna(outcomes["OPEN"])
    assert deal(tiny, "WON")["created_at"] == utc("2017-03-02")
    assert deal(tiny, "WON")["closed_at"] == utc("2017-04-01")
    assert pd.isna(deal(tiny, "OPEN")["closed_at"])


def test_an_opportunity_without_an_engage_date_is_dropped(tiny: Adapted) -> None:
    assert "PROS" not in set(tiny.deals["deal_id"])
    assert any(note.startswith("1 opportunities without an engage date") for note in tiny.notes)


def test_an_opportunity_engaged_before_the_first_recorded_close_is_dropped(
    tiny: Adapted,
) -> None:
    assert "EARLY" not in set(tiny.deals["deal_id"])


def test_the_amount_is_the_list_price_whatever_the_outcome(tiny: Adapted) -> None:
    assert deal(tiny, "WON")["amount"] == deal(tiny, "LOST")["amount"] == 4821.0
    assert "close_value" not in tiny.deals.columns


def test_gtxpro_is_renamed_to_the_products_file_spelling(tiny: Adapted) -> None:
    assert deal(tiny, "WON")["product"] == "GTX Pro"


def test_the_owner_is_the_agent_with_the_agents_manager_and_office(tiny: Adapted) -> None:
    lost = deal(tiny, "LOST")
    assert (lost["owner_id"], lost["manager"], lost["regional_office"]) == ("Bob", "Leo", "East")


def test_the_account_profile_is_kept_with_fixed_spelling_and_bands(tiny: Adapted) -> None:
    won = deal(tiny, "WON")
    assert won["account"] == "Acme"
    assert won["sector"] == "technology"
    assert (won["revenue_band"], won["employees_band"]) == ("1B-2.5B", "2.5k-5k")


def test_there_is_no_account_id_and_a_missing_account_leaves_its_profile_empty(
    tiny: Adapted,
) -> None:
    assert "account_id" not in tiny.deals.columns
    assert deal(tiny, "OPEN")[list(ACCOUNT_ATTRIBUTES)].isna().all()


def test_each_deal_has_one_stage_change_to_engaging_at_creation_and_none_at_close(
    tiny: Adapted,
) -> None:
    events = tiny.interactions.merge(tiny.deals, on="deal_id")
    assert len(events) == len(tiny.deals)
    assert set(events["type"]) == {"stage_change"}
    assert (events["value"] == ENGAGING_STAGE).all()
    assert (events["occurred_at"] == events["created_at"]).all()
    assert not (events["occurred_at"] == events["closed_at"]).any()


def test_a_product_missing_from_the_products_file_is_refused(tmp_path: Path) -> None:
    products = PRODUCTS.replace("MG Special,MG,55\n", "")
    with pytest.raises(DataContractError, match=r"column 'product' has 1 values missing"):
        adapt(write_source(tmp_path, products=products))


def test_an_unknown_deal_stage_is_refused(tmp_path: Path) -> None:
    pipeline = PIPELINE.replace("Lost,2017-03-03", "Negotiating,2017-03-03")
    with pytest.raises(DataContractError, match=r"column 'deal_stage' has 1 values missing"):
        adapt(write_source(tmp_path, pipeline=pipeline))


# The real data set


@pytest.fixture(scope="module")
def crm() -> Adapted:
    if not DATA.is_dir():
        pytest.skip(f"CRM sales data not found at {DATA}; the shared data folder is absent")
    return adapt(DATA)


@pytest.fixture(scope="module")
def raw_pipeline() -> pd.DataFrame:
    if not DATA.is_dir():
        pytest.skip(f"CRM sales data not found at {DATA}; the shared data folder is absent")
    return pd.read_csv(DATA / PIPELINE_FILE, dtype="str")


def test_every_engaged_opportunity_from_the_first_close_on_is_one_deal(
    crm: Adapted, raw_pipeline: pd.DataFrame
) -> None:
    engaged = pd.to_datetime(raw_pipeline["engage_date"])
    kept = raw_pipeline[engaged >= pd.to_datetime(raw_pipeline["close_date"]).min()]
    assert len(raw_pipeline) == 8800
    assert sorted(crm.deals["deal_id"]) == sorted(kept["opportunity_id"])


def test_the_frames_are_typed_as_the_contract_reads_them(crm: Adapted) -> None:
    again = validate_deals(crm.deals, "deals", (*ATTRIBUTES, *ACCOUNT_ATTRIBUTES))
    pd.testing.assert_frame_equal(crm.deals, again)
    interactions = validate_interactions(crm.interactions, "interactions", crm.deals["deal_id"])
    pd.testing.assert_frame_equal(crm.interactions, interactions)
    assert str(crm.deals["created_at"].dt.tz) == "UTC"
    assert set(crm.deals["outcome"].dropna()) == {"won", "lost"}


def test_the_same_product_has_the_same_amount_won_or_lost(crm: Adapted) -> None:
    closed = crm.deals[crm.deals["outcome"].notna()]
    per_product = closed.groupby(["product", "outcome"])["amount"].agg(["min", "max"]).unstack()
    assert (per_product["min"] == per_product["max"]).all().all()
    assert (per_product[("min", "won")] == per_product[("min", "lost")]).all()
    assert crm.deals["amount"].notna().all()
    assert (crm.deals.loc[crm.deals["outcome"] == "lost", "amount"] > 0).all()


def test_every_product_name_matches_the_products_file(crm: Adapted) -> None:
    products = pd.read_csv(DATA / PRODUCTS_FILE, dtype="str")
    assert set(crm.deals["product"]) <= set(products["product"])
    assert "GTXPro" not in set(crm.deals["product"])


def test_every_deal_without_an_account_is_open(crm: Adapted) -> None:
    """Why the account is not a feature: its absence marks a deal that never closes."""
    no_account = crm.deals["account"].isna()
    assert no_account.sum() > 0
    assert crm.deals.loc[no_account, "outcome"].isna().all()


def test_the_config_uses_no_account_field(crm: Adapted) -> None:
    config = load_config(CONFIG)
    assert config.data.adapter == "crm_sales"
    assert config.value.segment == "product"
    assert set(config.data.attributes) == set(ATTRIBUTES)
    assert not set(config.data.attributes) & set(ACCOUNT_ATTRIBUTES)
    assert "account_id" not in crm.deals.columns


def test_the_config_splits_the_data_with_both_labels_in_every_slice(crm: Adapted) -> None:
    data = prepare_training_data(Dataset(crm.deals, crm.interactions, None), load_config(CONFIG))
    for name in ("train", "validation", "calibration", "test"):
        assert data.labels[data.rows(name)].nunique() == 2, name
