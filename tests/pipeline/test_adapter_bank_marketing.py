"""The Bank Marketing adapter: dates from row order, banded attributes, no `duration`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from closeprob.features.build import build_features
from closeprob.features.labels import label_outcomes
from closeprob.features.registry import feature_descriptions
from closeprob.features.snapshots import open_deal_snapshots, training_dates
from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.adapters import Adapted
from closeprob.pipeline.adapters.bank_marketing import ATTRIBUTES, BANDS, CONTACTS_FILE, adapt, band
from closeprob.pipeline.config import load_config
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.training import prepare_training_data
from closeprob.pipeline.validate import INTERACTION_COLUMNS, INTERACTION_OPTIONAL
from tests.conftest import utc

SOURCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "uci-bank-marketing"
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "bank_marketing.yaml"

HEADER = (
    '"age";"job";"marital";"education";"default";"balance";"housing";"loan";"contact";"day";'
    '"month";"duration";"campaign";"pdays";"previous";"poutcome";"y"\n'
)
ROWS = [
    '58;"management";"married";"tertiary";"no";2143;"yes";"no";"unknown";5;"may";261;1;-1;0;'
    '"unknown";"no"',
    '29;"technician";"single";"secondary";"no";0;"yes";"no";"cellular";31;"dec";151;4;92;2;'
    '"failure";"yes"',
    '30;"student";"single";"unknown";"no";-5;"no";"no";"cellular";2;"jan";76;11;400;4;'
    '"success";"yes"',
]


def write_contacts(folder: Path, rows: list[str]) -> Path:
    (folder / CONTACTS_FILE).write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Adapted:
    return adapt(write_contacts(tmp_path_factory.mktemp("bank"), ROWS))


@pytest.fixture(scope="module")
def real() -> Adapted:
    """The real file, read once for the module; skipped where the shared data are absent."""
    if not (SOURCE / CONTACTS_FILE).is_file():
        pytest.skip(f"{SOURCE / CONTACTS_FILE} is absent (the shared UCI data are not here)")
    return adapt(SOURCE)


# the hand-built file


def test_a_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match=r"bank-full\.csv: file not found"):
        adapt(tmp_path)


def test_the_year_goes_up_each_time_the_month_goes_back(tiny: Adapted) -> None:
    assert tiny.deals["created_at"].tolist() == [
        utc("2008-05-05T12:00"),
        utc("2008-12-31T12:00"),
        utc("2009-01-02T12:00"),
    ]
    assert (tiny.deals["closed_at"] - tiny.deals["created_at"] == pd.Timedelta(days=1)).all()


def test_days_going_back_within_a_month_are_refused(tmp_path: Path) -> None:
    rows = [ROWS[0], ROWS[0].replace(";5;", ";4;", 1)]
    with pytest.raises(DataContractError, match=r"non-decreasing row order"):
        adapt(write_contacts(tmp_path, rows))


def test_an_unknown_month_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match=r"column 'month' has unknown values \['mai'\]"):
        adapt(write_contacts(tmp_path, [ROWS[0].replace('"may"', '"mai"')]))


def test_a_non_numeric_age_is_refused_with_the_column(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match=r"column 'age' is not numeric in 1 row"):
        adapt(write_contacts(tmp_path, [ROWS[0].replace("58;", "fifty;", 1)]))


def test_subscribed_is_won_and_every_deal_is_closed(tiny: Adapted) -> None:
    assert tiny.deals["outcome"].tolist() == ["lost", "won", "won"]
    assert tiny.deals["amount"].isna().all()


def test_numbers_become_bands_and_categories_stay_as_written(tiny: Adapted) -> None:
    first, second, third = (tiny.deals.loc[i, list(ATTRIBUTES)].to_dict() for i in range(3))
    assert first == {
        "age": "50-59",
        "job": "management",
        "marital": "married",
        "education": "tertiary",
        "default": "no",
        "balance": "2000-9999",
        "housing": "yes",
        "loan": "no",
        "contact": "unknown",
        "campaign": "1",
        "pdays": "never",
        "previous": "0",
        "poutcome": "unknown",
    }
    assert (second["age"], second["balance"], second["campaign"]) == ("25-29", "0", "4-5")
    assert (second["pdays"], second["previous"]) == ("91-180", "2-3")
    assert (third["age"], third["balance"], third["campaign"]) == ("30-39", "<0", "11+")
    assert (third["pdays"], third["previous"]) == ("366+", "4+")


def test_band_bounds_are_inclusive_below() -> None:
    ages = pd.Series([18, 24, 25, 29, 30, 59, 60, 95])
    assert band(ages, BANDS["age"]).tolist() == [
        "<25",
        "<25",
        "25-29",
        "25-29",
        "30-39",
        "50-59",
        "60+",
        "60+",
    ]


def test_there_are_no_interactions_but_the_contract_columns_exist(tiny: Adapted) -> None:
    assert len(tiny.interactions) == 0
    assert list(tiny.interactions.columns) == [*INTERACTION_COLUMNS, *INTERACTION_OPTIONAL]
    assert str(tiny.interactions["occurred_at"].dt.tz) == "UTC"


# duration is known only after the call


def test_no_deal_column_comes_from_duration(tiny: Adapted) -> None:
    assert not [c for c in tiny.deals.columns if "duration" in c]


def test_changing_duration_changes_nothing(tiny: Adapted, tmp_path: Path) -> None:
    rewritten = [row.replace(";261;", ";9999;").replace(";151;", ";0;") for row in ROWS]
    other = adapt(write_contacts(tmp_path, rewritten))
    pd.testing.assert_frame_equal(tiny.deals, other.deals)


def test_no_feature_comes_from_duration(tiny: Adapted) -> None:
    config = load_config(CONFIG)
    assert "duration" not in config.data.attributes
    spec = FeatureSpec(event_types=(), attributes=config.data.attributes, history_keys=())
    snapshots = pd.DataFrame(
        {"deal_id": tiny.deals["deal_id"], "as_of": tiny.deals["closed_at"].dt.floor("D")}
    )
    features = build_features(tiny.deals, tiny.interactions, snapshots, spec)
    assert not [c for c in features.columns if "duration" in c]
    assert not [d for d in feature_descriptions(spec).values() if "duration" in d]


def test_a_missing_number_has_no_band() -> None:
    assert band(pd.Series([float("nan"), 3.0]), BANDS["previous"]).isna().tolist() == [True, False]


# the real file


def test_the_real_file_has_every_contact_in_time_order(real: Adapted) -> None:
    deals = real.deals
    assert len(deals) == 45_211
    assert (deals["outcome"] == "won").sum() == 5_289
    assert deals["closed_at"].notna().all()
    assert deals["created_at"].is_monotonic_increasing
    assert deals["created_at"].iloc[0] == utc("2008-05-05T12:00")
    assert deals["created_at"].iloc[-1] == utc("2010-11-17T12:00")
    assert len(real.interactions) == 0


def test_each_contact_is_one_snapshot_row_labelled_by_its_outcome(real: Adapted) -> None:
    config = load_config(CONFIG)
    every, horizon = config.snapshots.every_days, config.snapshots.horizon_days
    dates = training_dates(real.deals, real.interactions, every, horizon)
    snapshots = open_deal_snapshots(real.deals, dates)
    assert snapshots["deal_id"].is_unique
    # Only the last day's contacts have a label window past the end of the data.
    contact_day = real.deals["created_at"].dt.floor("D")
    last_day = contact_day == contact_day.max()
    assert len(snapshots) == len(real.deals) - last_day.sum()
    outcomes = snapshots.merge(real.deals, on="deal_id")["outcome"]
    labels = label_outcomes(real.deals, snapshots, horizon)
    assert (labels == (outcomes == "won").astype(int)).all()


def test_the_config_splits_the_real_file_by_time(real: Adapted) -> None:
    data = prepare_training_data(Dataset(real.deals, real.interactions, None), load_config(CONFIG))
    split = data.split
    assert split.train[-1] < split.validation[0] < split.calibration[0] < split.test[0]
