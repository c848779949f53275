"""The Olist adapter: leads as deals, the lost rule, and nothing from the won-only columns.

Rules are checked on a hand-built source of a few leads; the real files (when present) are
read once per module and checked as data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from closeprob.features.registry import feature_descriptions
from closeprob.features.spec import FeatureSpec, select_event_types, slug
from closeprob.pipeline.adapters import Adapted
from closeprob.pipeline.adapters.olist import (
    ATTRIBUTES,
    LEADS_FILE,
    LOST_AFTER_DAYS,
    WON_FILE,
    WON_ONLY_COLUMNS,
    adapt,
)
from closeprob.pipeline.config import load_config
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.training import prepare_training_data
from closeprob.pipeline.validate import validate_deals, validate_interactions
from tests.conftest import utc, write_csv

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "olist-marketing-funnel"
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "olist.yaml"
CONTRACT = ("deal_id", "created_at", "closed_at", "outcome")

LEADS = """mql_id,first_contact_date,landing_page_id,origin
EARLY,2017-11-01,P1,social
FIRST,2017-12-05,P1,organic_search
WON,2018-01-01,P2,paid_search
LOST,2018-01-02,P2,
LATE,2018-01-03,P1,email
BEFORE,2018-03-08,P3,social
OPEN,2018-06-01,P3,direct_traffic
"""
WON_ONLY = ",".join(WON_ONLY_COLUMNS)
WINS = f"""mql_id,won_date,{WON_ONLY}
FIRST,2017-12-05 08:00:00,S1,R1,R2,pet,online_medium,cat,True,False,5,reseller,10,1000.0
WON,2018-01-11 15:30:00,S2,R1,R2,car,industry,eagle,,,,reseller,,0.0
LATE,2018-08-01 12:00:00,S3,R1,R3,toys,online_big,wolf,True,True,1,manufacturer,20,50000.0
BEFORE,2018-03-06 19:38:55,S4,R2,R3,pet,offline,shark,,,,reseller,,0.0
"""


def write_source(folder: Path, leads: str = LEADS, wins: str = WINS) -> Path:
    write_csv(folder / LEADS_FILE, leads)
    write_csv(folder / WON_FILE, wins)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Adapted:
    return adapt(write_source(tmp_path_factory.mktemp("olist")))


def deal(adapted: Adapted, deal_id: str) -> pd.Series:
    return adapted.deals[adapted.deals["deal_id"] == deal_id].iloc[0]


# The rules, on a few hand-built leads


def test_a_lead_won_within_the_window_is_won_at_its_win_time(tiny: Adapted) -> None:
    won = deal(tiny, "WON")
    assert won["created_at"] == utc("2018-01-01")
    assert won["closed_at"] == utc("2018-01-11 15:30:00")
    assert won["outcome"] == "won"


def test_a_lead_never_won_is_lost_at_the_deadline_after_first_contact(tiny: Adapted) -> None:
    lost = deal(tiny, "LOST")
    assert lost["closed_at"] == utc("2018-01-02") + pd.Timedelta(days=LOST_AFTER_DAYS)
    assert lost["outcome"] == "lost"


def test_a_lead_whose_deadline_falls_after_the_end_of_the_data_stays_open(tiny: Adapted) -> None:
    still_open = deal(tiny, "OPEN")
    assert pd.isna(still_open["closed_at"])
    assert pd.isna(still_open["outcome"])


def test_a_win_after_the_deadline_is_lost_at_the_deadline(tiny: Adapted) -> None:
    late = deal(tiny, "LATE")
    assert late["closed_at"] == utc("2018-01-03") + pd.Timedelta(days=LOST_AFTER_DAYS)
    assert late["outcome"] == "lost"


def test_a_win_logged_before_the_first_contact_is_won_at_first_contact(tiny: Adapted) -> None:
    before = deal(tiny, "BEFORE")
    assert before["closed_at"] == before["created_at"] == utc("2018-03-08")
    assert before["outcome"] == "won"


def test_leads_contacted_before_the_first_recorded_win_are_dropped(tiny: Adapted) -> None:
    assert "EARLY" not in set(tiny.deals["deal_id"])
    assert "FIRST" in set(tiny.deals["deal_id"])
    assert any("1 leads first contacted before 2017-12-05" in note for note in tiny.notes)


def test_the_deals_hold_only_contract_columns_and_the_two_attributes(tiny: Adapted) -> None:
    assert list(tiny.deals.columns) == [*CONTRACT, "amount", *ATTRIBUTES]
    assert tiny.deals["amount"].isna().all()


def test_each_lead_has_one_inbound_first_contact_at_its_creation(tiny: Adapted) -> None:
    contacts = tiny.interactions.set_index("deal_id")
    assert contacts.index.is_unique
    assert set(contacts.index) == set(tiny.deals["deal_id"])
    created = tiny.deals.set_index("deal_id")["created_at"]
    assert (contacts["occurred_at"] == created.reindex(contacts.index)).all()
    assert set(contacts["type"]) == {"first_contact"}
    assert set(contacts["direction"]) == {"inbound"}


def test_a_lead_won_twice_is_refused(tmp_path: Path) -> None:
    wins = WINS + "WON,2018-02-01 10:00:00,S2,R1,R2,car,industry,eagle,,,,reseller,,0.0\n"
    with pytest.raises(DataContractError, match=r"column 'mql_id' is duplicated in 2 rows"):
        adapt(write_source(tmp_path, wins=wins))


def test_a_missing_column_is_refused_with_the_file_named(tmp_path: Path) -> None:
    leads = LEADS.replace("first_contact_date", "contact_date")
    with pytest.raises(DataContractError, match=rf"{LEADS_FILE}: missing column\(s\)"):
        adapt(write_source(tmp_path, leads=leads))


# The real data set


@pytest.fixture(scope="module")
def olist() -> Adapted:
    if not DATA.is_dir():
        pytest.skip(f"Olist data not found at {DATA}; the shared data folder is absent")
    return adapt(DATA)


@pytest.fixture(scope="module")
def raw_leads() -> pd.DataFrame:
    if not DATA.is_dir():
        pytest.skip(f"Olist data not found at {DATA}; the shared data folder is absent")
    return pd.read_csv(DATA / LEADS_FILE, dtype="str")


@pytest.fixture(scope="module")
def raw_wins() -> pd.DataFrame:
    if not DATA.is_dir():
        pytest.skip(f"Olist data not found at {DATA}; the shared data folder is absent")
    return pd.read_csv(DATA / WON_FILE, dtype="str")


def test_every_lead_from_the_first_recorded_win_on_is_one_deal(
    olist: Adapted, raw_leads: pd.DataFrame, raw_wins: pd.DataFrame
) -> None:
    first_win = pd.to_datetime(raw_wins["won_date"]).min().floor("D")
    kept = raw_leads[pd.to_datetime(raw_leads["first_contact_date"]) >= first_win]
    assert len(raw_leads) == 8000
    assert sorted(olist.deals["deal_id"]) == sorted(kept["mql_id"])


def test_the_frames_are_typed_as_the_contract_reads_them(olist: Adapted) -> None:
    again = validate_deals(olist.deals, "deals", ATTRIBUTES)
    pd.testing.assert_frame_equal(olist.deals, again)
    interactions = validate_interactions(olist.interactions, "interactions", olist.deals["deal_id"])
    pd.testing.assert_frame_equal(olist.interactions, interactions)
    assert str(olist.deals["created_at"].dt.tz) == "UTC"
    assert set(olist.deals["outcome"].dropna()) == {"won", "lost"}


def test_won_deals_are_leads_in_the_closed_deals_file(
    olist: Adapted, raw_wins: pd.DataFrame
) -> None:
    won = olist.deals.loc[olist.deals["outcome"] == "won", "deal_id"]
    assert set(won) <= set(raw_wins["mql_id"])


def test_a_lead_won_after_the_deadline_is_lost_at_the_deadline(
    olist: Adapted, raw_wins: pd.DataFrame
) -> None:
    in_closed_deals = olist.deals["deal_id"].isin(raw_wins["mql_id"])
    late = olist.deals[in_closed_deals & (olist.deals["outcome"] != "won")]
    assert len(late) > 0
    assert (late["outcome"] == "lost").all()
    assert (late["closed_at"] - late["created_at"] == pd.Timedelta(days=LOST_AFTER_DAYS)).all()


def test_no_deals_column_and_no_feature_comes_from_a_won_only_column(olist: Adapted) -> None:
    config = load_config(CONFIG)
    spec = FeatureSpec(
        event_types=select_event_types(olist.interactions, utc("2100-01-01"), 20),
        attributes=config.data.attributes,
        history_keys=tuple(k for k in ("owner_id", "account_id") if k in olist.deals.columns),
    )
    names = list(feature_descriptions(spec))
    assert not set(WON_ONLY_COLUMNS) & set(olist.deals.columns)
    assert not set(WON_ONLY_COLUMNS) & set(config.data.attributes)
    leaked = [n for n in names for c in WON_ONLY_COLUMNS if slug(c) in n]
    assert leaked == []


def test_a_won_and_a_not_won_lead_have_the_same_non_null_attributes(olist: Adapted) -> None:
    described = [c for c in olist.deals.columns if c not in CONTRACT]
    complete = olist.deals[olist.deals[list(ATTRIBUTES)].notna().all(axis=1)]
    won = complete[complete["outcome"] == "won"].iloc[0]
    not_won = complete[complete["outcome"] != "won"].iloc[0]
    assert set(won[described].dropna().index) == set(not_won[described].dropna().index)
    by_outcome = olist.deals[described].notna().groupby(olist.deals["outcome"] == "won").any()
    assert (by_outcome.loc[True] == by_outcome.loc[False]).all()


def test_interactions_are_first_contacts_and_never_the_win(olist: Adapted) -> None:
    assert len(olist.interactions) == len(olist.deals)
    assert set(olist.interactions["type"]) == {"first_contact"}
    merged = olist.interactions.merge(olist.deals, on="deal_id")
    assert (merged["occurred_at"] == merged["created_at"]).all()
    won = merged[(merged["outcome"] == "won") & (merged["closed_at"] > merged["created_at"])]
    assert (won["occurred_at"] < won["closed_at"]).all()


def test_the_config_splits_the_data_with_both_labels_in_every_slice(olist: Adapted) -> None:
    config = load_config(CONFIG)
    assert config.data.adapter == "olist"
    assert config.data.truth is None
    data = prepare_training_data(Dataset(olist.deals, olist.interactions, None), config)
    for name in ("train", "validation", "calibration", "test"):
        assert data.labels[data.rows(name)].nunique() == 2, name
