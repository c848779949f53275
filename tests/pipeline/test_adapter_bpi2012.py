"""The BPI 2012 adapter: a tiny hand-built log, the real log's counts, and no leakage."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from closeprob.features.build import build_features
from closeprob.features.spec import FeatureSpec, select_event_types
from closeprob.pipeline.adapters import Adapted
from closeprob.pipeline.adapters.bpi2012 import EVENTS_FILE, adapt
from closeprob.pipeline.config import load_config
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.training import prepare_training_data
from tests.conftest import utc

SOURCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "bpi2012"
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "bpi2012.yaml"
# Events at or after the decision that reveal it (../shared/data/README.md).
REVEALING = (
    "A_APPROVED",
    "A_REGISTERED",
    "A_ACTIVATED",
    "A_DECLINED",
    "A_CANCELLED",
    "O_ACCEPTED",
    "O_DECLINED",
    "O_CANCELLED",
)
SAMPLE_CASES = 400

TINY_LOG = """case_id,amount_req,reg_date,activity,lifecycle,timestamp,resource
1,5000,2011-10-29T10:00:00.000+02:00,A_SUBMITTED,COMPLETE,2011-10-29T10:00:00.000+02:00,112
1,5000,2011-10-29T10:00:00.000+02:00,W_Nabellen offertes,START,2011-10-30T09:00:00.000+01:00,
1,5000,2011-10-29T10:00:00.000+02:00,A_CANCELLED,COMPLETE,2011-11-02T12:00:00.000+01:00,10862
1,5000,2011-10-29T10:00:00.000+02:00,A_DECLINED,COMPLETE,2011-11-03T12:00:00.000+01:00,10862
2,0,2011-11-01T08:00:00.000+01:00,A_SUBMITTED,COMPLETE,2011-11-01T08:00:00.000+01:00,112
2,0,2011-11-01T08:00:00.000+01:00,O_SENT,COMPLETE,2011-11-01T09:00:00.000+01:00,10862
2,0,2011-11-01T08:00:00.000+01:00,A_APPROVED,COMPLETE,2011-11-05T10:00:00.000+01:00,10862
3,20000,2011-11-02T08:00:00.000+01:00,A_SUBMITTED,COMPLETE,2011-11-02T08:00:00.000+01:00,112
3,20000,2011-11-02T08:00:00.000+01:00,W_Afhandelen leads,SCHEDULE,2011-11-02T08:01:00.000+01:00,
"""


def write_log(folder: Path, text: str) -> Path:
    with gzip.open(folder / EVENTS_FILE, "wt", encoding="utf-8") as handle:
        handle.write(text)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Adapted:
    return adapt(write_log(tmp_path_factory.mktemp("bpi2012"), TINY_LOG))


@pytest.fixture(scope="module")
def real() -> Adapted:
    """The real log, read once for the module; skipped where the shared data are absent."""
    if not (SOURCE / EVENTS_FILE).is_file():
        pytest.skip(f"{SOURCE / EVENTS_FILE} is absent (the shared BPI 2012 data are not here)")
    return adapt(SOURCE)


# the hand-built log


def test_a_missing_log_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(DataContractError, match=r"bpi2012_events\.csv\.gz: file not found"):
        adapt(tmp_path)


def test_a_log_without_a_required_column_is_refused(tmp_path: Path) -> None:
    text = TINY_LOG.replace("activity,", "action,", 1)
    with pytest.raises(DataContractError, match=r"missing required column 'activity'"):
        adapt(write_log(tmp_path, text))


def test_the_first_deciding_event_closes_the_case(tiny: Adapted) -> None:
    deals = tiny.deals.set_index("deal_id")
    assert deals.loc["1", "outcome"] == "lost"
    assert deals.loc["1", "closed_at"] == utc("2011-11-02T11:00:00")
    assert deals.loc["2", "outcome"] == "won"
    assert deals.loc["2", "closed_at"] == utc("2011-11-05T09:00:00")


def test_a_case_without_a_decision_is_open(tiny: Adapted) -> None:
    still_open = tiny.deals[tiny.deals["deal_id"] == "3"]
    assert still_open["closed_at"].isna().all()
    assert still_open["outcome"].isna().all()


def test_timestamps_keep_their_offset_across_the_dst_switch(tiny: Adapted) -> None:
    deals = tiny.deals.set_index("deal_id")
    assert deals.loc["1", "created_at"] == utc("2011-10-29T08:00:00")
    first_call = tiny.interactions[tiny.interactions["type"] == "W_Nabellen offertes:START"]
    assert first_call["occurred_at"].tolist() == [utc("2011-10-30T08:00:00")]


def test_deals_are_typed_as_the_contract_returns_them(tiny: Adapted) -> None:
    deals = tiny.deals
    assert list(deals.columns) == ["deal_id", "created_at", "closed_at", "outcome", "amount"]
    assert str(deals["created_at"].dt.tz) == "UTC"
    assert deals["amount"].tolist() == [5000.0, 0.0, 20000.0]
    assert deals["deal_id"].tolist() == ["1", "2", "3"]


def test_interaction_types_carry_the_lifecycle_unless_complete(tiny: Adapted) -> None:
    assert tiny.interactions["type"].tolist() == [
        "A_SUBMITTED",
        "W_Nabellen offertes:START",
        "A_CANCELLED",
        "A_DECLINED",
        "A_SUBMITTED",
        "O_SENT",
        "A_APPROVED",
        "A_SUBMITTED",
        "W_Afhandelen leads:SCHEDULE",
    ]


def test_channels_come_from_the_activity_prefix_and_direction_is_empty(tiny: Adapted) -> None:
    interactions = tiny.interactions
    assert interactions["channel"].tolist()[:3] == ["application", "work_item", "application"]
    assert interactions.loc[5, "channel"] == "offer"
    assert interactions["direction"].isna().all()
    assert interactions["value"].isna().all()


# the real log


def test_the_real_log_has_every_case_with_its_outcome(real: Adapted) -> None:
    outcomes = real.deals["outcome"].value_counts(dropna=False)
    assert len(real.deals) == 13_087
    assert outcomes["won"] == 2_246
    assert outcomes["lost"] == 7_635 + 2_807
    assert real.deals["closed_at"].isna().sum() == 399
    assert len(real.interactions) == 262_200


def test_lost_cases_split_into_declined_and_cancelled(real: Adapted) -> None:
    deciding = real.interactions.merge(
        real.deals[["deal_id", "closed_at"]], on="deal_id", validate="m:1"
    )
    at_close = deciding[
        (deciding["occurred_at"] == deciding["closed_at"])
        & deciding["type"].isin(["A_APPROVED", "A_DECLINED", "A_CANCELLED"])
    ]
    assert at_close["type"].value_counts().to_dict() == {
        "A_DECLINED": 7_635,
        "A_CANCELLED": 2_807,
        "A_APPROVED": 2_246,
    }


def test_every_case_is_created_at_its_first_event(real: Adapted) -> None:
    first = real.interactions.groupby("deal_id")["occurred_at"].min()
    created = real.deals.set_index("deal_id")["created_at"]
    assert (first.reindex(created.index) == created).all()


def test_the_config_splits_the_real_log_into_four_slices(real: Adapted) -> None:
    data = prepare_training_data(Dataset(real.deals, real.interactions, None), load_config(CONFIG))
    split = data.split
    assert min(len(split.train), len(split.calibration), len(split.test)) >= 5


# leakage: the events that reveal the decision change nothing before it


def _sample_snapshots(real: Adapted, seed: int = 7) -> pd.DataFrame:
    """(deal_id, as_of) rows of sampled decided cases, every as_of strictly before the case's
    first revealing event: one second before it, and each midnight since creation."""
    revealing = real.interactions[real.interactions["type"].isin(REVEALING)]
    first_reveal = revealing.groupby("deal_id")["occurred_at"].min()
    created = real.deals.set_index("deal_id")["created_at"]
    decided = real.deals.loc[real.deals["outcome"].notna(), "deal_id"]
    sample = decided.sample(SAMPLE_CASES, random_state=seed).to_numpy()
    reveal, start = first_reveal[sample], created[sample]
    just_before = pd.DataFrame(
        {"deal_id": sample, "as_of": (reveal - pd.Timedelta(milliseconds=1)).dt.floor("s")}
    )
    days = ((reveal - start).dt.days + 1).to_numpy()
    midnights = pd.DataFrame(
        {
            "deal_id": np.repeat(sample, days),
            "as_of": pd.DatetimeIndex(start.dt.floor("D")).repeat(days)
            + pd.to_timedelta(np.concatenate([np.arange(1, n + 1) for n in days]), unit="D"),
        }
    )
    rows = pd.concat([just_before, midnights], ignore_index=True)
    rows["as_of"] = pd.to_datetime(rows["as_of"], utc=True)
    bound = rows["deal_id"].map(first_reveal)
    keep = (rows["as_of"] < bound) & (rows["as_of"] > rows["deal_id"].map(created))
    return rows[keep].reset_index(drop=True)


def _spec(real: Adapted) -> FeatureSpec:
    """Every event type, the revealing ones included, so their counts are columns too."""
    end = real.interactions["occurred_at"].max() + pd.Timedelta(seconds=1)
    return FeatureSpec(
        event_types=select_event_types(real.interactions, end, max_types=50),
        windows_days=(1, 7, 30),
        history_keys=tuple(k for k in ("owner_id", "account_id") if k in real.deals.columns),
    )


def test_features_before_the_decision_ignore_the_events_that_reveal_it(real: Adapted) -> None:
    snapshots = _sample_snapshots(real)
    spec = _spec(real)
    assert set(REVEALING) <= set(spec.event_types)
    assert snapshots["deal_id"].nunique() > SAMPLE_CASES // 2
    without = real.interactions[~real.interactions["type"].isin(REVEALING)]
    with_all = build_features(real.deals, real.interactions, snapshots, spec)
    without_revealing = build_features(real.deals, without, snapshots, spec)
    pd.testing.assert_frame_equal(with_all, without_revealing)


def test_the_same_comparison_after_the_decision_does_see_the_removed_events(
    real: Adapted,
) -> None:
    """The check above has teeth: a day after the close, removing the events shows."""
    decided = real.deals[real.deals["outcome"].notna()].sample(SAMPLE_CASES, random_state=7)
    snapshots = pd.DataFrame(
        {
            "deal_id": decided["deal_id"].to_numpy(),
            "as_of": (decided["closed_at"] + pd.Timedelta(days=1)).dt.floor("s").to_numpy(),
        }
    )
    spec = _spec(real)
    without = real.interactions[~real.interactions["type"].isin(REVEALING)]
    with_all = build_features(real.deals, real.interactions, snapshots, spec)
    without_revealing = build_features(real.deals, without, snapshots, spec)
    changed = (with_all["touches_total"] != without_revealing["touches_total"]).mean()
    assert changed == 1.0
