"""A team's own CRM export through the real CLI: `check` lists every problem at once, headers
are mapped or refused by name, names keep own data out of the built-in registry, "now" is sane,
and what CRMs vary (case, double imports, amount typos) is normalised or flagged."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.attributes import attribute_features, normalise_levels
from closeprob.models.classifier import encode_features, fit_categories, known_levels
from closeprob.pipeline.amounts import amount_outliers
from closeprob.pipeline.cli import main
from closeprob.pipeline.config import BUILTIN_NAME, Config, load_config, with_data_paths, with_name
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.dataset import rows_after
from closeprob.pipeline.errors import ConfigError
from closeprob.pipeline.scoring import default_as_of, far_past_the_data, stragglers
from tests.conftest import make_deals, make_interactions, utc

DEALS = (
    "deal_id,created_at,closed_at,outcome,amount,industry\n"
    "D1,2024-01-01,,,100,Software\n"
    "D2,2024-01-02,2024-02-01,won,200,SOFTWARE \n"
    "D3,2024-01-03,2024-02-02,lost,300,retail\n"
)
EVENTS = (
    "deal_id,occurred_at,type,direction\n"
    "D1,2024-01-05,call,outbound\n"
    "D2,2024-01-06,email,inbound\n"
    "D3,2024-01-07,call,outbound\n"
)


def own_data(
    folder: Path,
    deals: str = DEALS,
    events: str = EVENTS,
    **data: object,
) -> Path:
    """deals.csv, interactions.csv and a config.yaml (attributes [industry], no value segment)
    in `folder`; `data` updates the config's data section. Returns the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "deals.csv").write_text(deals, encoding="utf-8")
    (folder / "interactions.csv").write_text(events, encoding="utf-8")
    config = {
        "data": {
            "deals": str(folder / "deals.csv"),
            "interactions": str(folder / "interactions.csv"),
            "attributes": ["industry"],
        }
        | data,
        "value": {"segment": None},
        "evaluation": {"segment": None},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture()
def quiet_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in `tmp_path` with the default tracking store there, to see that nothing is written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    return tmp_path


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# check: every problem at once


def test_check_lists_every_problem_of_both_files_at_once_exits_2_and_writes_nothing(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deals = DEALS.replace("2024-01-02,", "yesterday,").replace(",300,", ",-3,")
    events = EVENTS.replace("inbound", "sideways")
    config = own_data(quiet_store / "acme", deals, events)
    before = files_under(quiet_store)

    assert main(["check", "--config", str(config), "--for", "predict"]) == 2

    out, err = capsys.readouterr()
    assert "column 'created_at' has unparseable timestamps (first value: 'yesterday')" in out
    assert "column 'amount' is negative in 1 row (first deal_id: 'D3')" in out
    assert "column 'direction' is not one of ['inbound', 'outbound']" in out
    assert "Problems (3 errors" in out
    assert err.startswith("error: check found 3 errors (listed above)")
    assert files_under(quiet_store) == before


def test_train_reports_every_contract_problem_at_once(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deals = DEALS.replace(",300,", ",-3,")
    events = EVENTS.replace("inbound", "sideways")
    config = own_data(quiet_store / "acme", deals, events)
    before = files_under(quiet_store)

    assert main(["train", "--config", str(config)]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: 2 problems in the input data:\n  - ")
    assert "'amount' is negative" in err and "'direction' is not one of" in err
    assert files_under(quiet_store) == before


def test_check_on_clean_data_prints_the_summary_and_exits_0(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = own_data(quiet_store / "acme")

    assert main(["check", "--config", str(config), "--for", "predict"]) == 0

    out = capsys.readouterr().out
    # Its one warning: no stage-change events, so the stage family stays empty (issue 20).
    assert "no errors: ready to predict" in out
    assert "no interaction is of features.stage_event_type 'stage_change'" in out
    assert "3 rows, 2024-01-01 … 2024-01-03 (created_at)" in out
    assert "won 1, lost 1, open 1; training needs at least 40 won and 40 lost: TOO FEW" in out
    assert "industry (100% filled, 2 levels in 3 spellings)" in out
    assert "no model registry at sqlite:///mlflow.db yet" in out
    assert not (quiet_store / "mlflow.db").exists()


def test_check_for_train_refuses_too_few_outcomes_with_trains_own_message(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--config", str(own_data(quiet_store / "acme"))]) == 2
    assert "training needs at least 40 of each" in capsys.readouterr().out


# column mapping and near misses


def test_a_header_differing_only_by_case_is_an_error_naming_both(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = own_data(quiet_store / "acme", DEALS.replace(",amount,", ",Amount,"))

    assert main(["train", "--config", str(config)]) == 2

    assert (
        "deals.csv: column 'Amount' differs from 'amount' only by case, spaces or punctuation; "
        "rename the column to 'amount', or map it in the config: data.columns: {amount: 'Amount'}"
    ) in capsys.readouterr().err


@pytest.mark.parametrize("header", ["Deal ID", "DEAL-ID", "deal id", "Deal_Id"])
def test_a_required_header_spelt_like_a_crm_is_named_not_called_missing(
    header: str, quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = own_data(quiet_store / "acme", DEALS.replace("deal_id,", f"{header},", 1))

    assert main(["check", "--config", str(config)]) == 2

    out = capsys.readouterr().out
    assert f"column {header!r} differs from 'deal_id' only by case" in out
    assert "missing required column 'deal_id'" not in out


def test_data_columns_maps_the_exports_headers_onto_the_contract(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deals = DEALS.replace("deal_id,created_at", "Deal ID,Created Date").replace(
        ",amount,industry", ",Deal Value,Sector"
    )
    events = EVENTS.replace("deal_id,occurred_at", "Deal ID,When")
    mapping = {
        "deal_id": "Deal ID",
        "created_at": "Created Date",
        "amount": "Deal Value",
        "industry": "Sector",
        "occurred_at": "When",
    }
    config = own_data(quiet_store / "acme", deals, events, columns=mapping)

    assert main(["check", "--config", str(config), "--for", "predict"]) == 0

    out = capsys.readouterr().out
    assert "used ['deal_id', 'created_at', 'closed_at', 'outcome', 'amount', 'industry']" in out
    assert "amount on 3 of 3 deals (100%)" in out


def test_a_mapping_to_a_header_the_file_lacks_is_refused_with_the_nearest_header(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = own_data(quiet_store / "acme", columns={"amount": "amout"})

    assert main(["check", "--config", str(config)]) == 2

    assert (
        "deals.csv: data.columns maps 'amount' to 'amout', but the file has no column 'amout' "
        "(did you mean 'amount'?)"
    ) in capsys.readouterr().out


def test_configured_attributes_missing_name_the_config_key(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = own_data(quiet_store / "acme", attributes=["industry", "region"])

    assert main(["train", "--config", str(config)]) == 2

    assert (
        "deals.csv: no column 'region', named by data.attributes = ['industry', 'region'] in the "
        "config (a key the config file leaves out takes configs/default.yaml's value)"
    ) in capsys.readouterr().err


def test_a_value_segment_column_that_is_missing_names_value_segment(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = own_data(quiet_store / "acme")
    raw = yaml.safe_load(path.read_text())
    raw["value"]["segment"] = "company_size"
    path.write_text(yaml.safe_dump(raw))

    assert main(["train", "--config", str(path)]) == 2

    assert (
        "deals.csv: no column 'company_size', named by value.segment = ['company_size'] in the "
        "config"
    ) in capsys.readouterr().err


def test_a_duplicated_csv_header_is_refused_not_renamed(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deals = DEALS.replace(",industry\n", ",amount\n").replace(",Software\n", ",7\n")
    config = own_data(quiet_store / "acme", deals, attributes=[])

    assert main(["train", "--config", str(config)]) == 2

    assert "deals.csv: column header 'amount' appears 2 times" in capsys.readouterr().err


def test_a_nested_parquet_column_is_refused(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = own_data(quiet_store / "acme")
    deals = pd.read_csv(quiet_store / "acme" / "deals.csv", dtype="str")
    deals["industry"] = [["software"], ["software", "retail"], []]
    deals.to_parquet(quiet_store / "acme" / "deals.parquet")
    raw = yaml.safe_load(config.read_text())
    raw["data"]["deals"] = str(quiet_store / "acme" / "deals.parquet")
    config.write_text(yaml.safe_dump(raw))

    assert main(["train", "--config", str(config)]) == 2

    assert (
        "deals.parquet: column 'industry' holds nested values (lists, structs or maps) in 3 rows "
        "(first value: ['software'])"
    ) in capsys.readouterr().err


def test_a_header_only_interactions_file_is_an_error_at_train_and_a_warning_for_predict(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = own_data(quiet_store / "acme", events="deal_id,occurred_at,type\n")

    assert main(["train", "--config", str(config)]) == 2
    assert (
        "interactions.csv: no interaction rows (the file has a header only); every deal would "
        "look never touched"
    ) in capsys.readouterr().err

    assert main(["check", "--config", str(config), "--for", "predict"]) == 0
    assert (
        "warning: " + str(quiet_store / "acme" / "interactions.csv") + ": no interaction rows "
        "(the file has a header only); all 1 open deals score as never touched"
    ) in capsys.readouterr().out


def test_an_optional_column_under_another_name_is_pointed_out(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deals = DEALS.replace(",industry\n", ",industry,Deal Owner\n").replace("\nD", ",U1\nD")
    deals = deals.replace(",retail\n", ",retail,U1\n")
    config = own_data(quiet_store / "acme", deals)

    main(["check", "--config", str(config), "--for", "predict"])

    assert (
        "no 'owner_id' (the owner's track record); is it 'Deal Owner'? map it: "
        "data.columns: {owner_id: 'Deal Owner'}"
    ) in capsys.readouterr().out


# normalising what CRMs vary


def test_duplicate_interactions_are_dropped_with_a_count_by_default(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = EVENTS + "D1,2024-01-05,call,outbound\nD1,2024-01-05,call,outbound\n"
    config = own_data(quiet_store / "acme", events=events)

    assert main(["check", "--config", str(config), "--for", "predict"]) == 0

    assert (
        "interactions.csv: dropped 2 rows that repeat an earlier row in every column "
        "(first deal_id: 'D1')"
    ) in capsys.readouterr().out


def test_duplicate_interactions_fail_when_the_config_says_so(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = EVENTS + "D1,2024-01-05,call,outbound\n"
    config = own_data(quiet_store / "acme", events=events, duplicate_interactions="fail")

    assert main(["check", "--config", str(config), "--for", "predict"]) == 2

    assert "1 rows repeat an earlier row in every column (first deal_id: 'D1')" in (
        capsys.readouterr().out
    )


def test_an_amount_far_above_its_segments_median_is_flagged_with_its_id(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deals = DEALS + "D4,2024-01-04,,,1.2e9,retail\n"
    config = own_data(quiet_store / "acme", deals)

    main(["check", "--config", str(config), "--for", "predict"])

    assert (
        "column 'amount' is above 1000× the median in 1 deal (first deal_id: 'D4'; "
        "1,200,000,000 against a median of 250)"
    ) in capsys.readouterr().out


def test_amount_outliers_use_the_segments_median() -> None:
    deals = make_deals(
        [
            {"deal_id": "S1", "created_at": "2024-01-01", "amount": 10.0, "size": "small"},
            {"deal_id": "S2", "created_at": "2024-01-01", "amount": 20_000.0, "size": "Small"},
            {"deal_id": "S3", "created_at": "2024-01-01", "amount": 12.0, "size": "small"},
            {"deal_id": "L1", "created_at": "2024-01-01", "amount": 9e6, "size": "large"},
        ]
    )
    message = amount_outliers(deals, "size", 1000)
    assert message is not None and "(first deal_id: 'S2';" in message
    assert amount_outliers(deals, None, 1000) is None


@settings(max_examples=50, deadline=None)
@given(
    levels=st.lists(st.sampled_from(["software", "retail", "real estate"]), min_size=1),
    data=st.data(),
)
def test_levels_differing_in_case_and_spaces_encode_the_same(
    levels: list[str], data: st.DataObject
) -> None:
    spelt = [
        data.draw(st.sampled_from([v, v.upper(), v.title(), f" {v} ", v.replace(" ", "  ")]))
        for v in levels
    ]
    categories = fit_categories(
        attribute_features(pd.DataFrame({"industry": levels}), ("industry",)), ["attr_industry"]
    )
    as_written = attribute_features(pd.DataFrame({"industry": spelt}), ("industry",))
    encoded = encode_features(as_written, ["attr_industry"], categories)
    assert encoded["attr_industry"].astype(object).tolist() == levels


def test_a_model_that_stored_levels_as_written_still_matches_normalised_values() -> None:
    # closeprob 0.1 stored levels as the data spelt them.
    assert known_levels(pd.Series(["software", " RETAIL", None]), ["Retail", "Software"]).tolist()[
        :2
    ] == ["Software", "Retail"]


def test_normalise_levels_keeps_missing_values_missing() -> None:
    assert normalise_levels(pd.Series([None, " A "])).isna().tolist() == [True, False]


# names


def test_own_data_left_under_the_built_in_name_gets_its_folders_name(tmp_path: Path) -> None:
    config = with_data_paths(Config(), tmp_path / "Acme Exports" / "deals.csv", tmp_path / "x.csv")
    named = with_name(config)
    assert named.name == "acme-exports"
    assert (named.experiment, named.registered_model) == ("acme-exports", "acme-exports")
    assert named.prediction_experiment == "acme-exports-predictions"
    assert named.model_uri == "models:/acme-exports@champion"


def test_the_built_in_data_keep_the_built_in_name() -> None:
    assert with_name(Config()).name == BUILTIN_NAME


def test_a_name_given_on_the_command_line_wins(tmp_path: Path) -> None:
    assert with_name(Config(), "acme").registered_model == "acme"


def test_an_unusable_name_is_refused_with_advice() -> None:
    with pytest.raises(ConfigError, match=r"name 'acme/2' is not usable as an MLflow"):
        with_name(Config(), "acme/2")


def test_a_config_still_naming_its_experiment_says_what_replaced_it(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("experiment: mine\npredict:\n  model_uri: models:/mine@champion\n")
    with pytest.raises(
        ConfigError,
        match=r"'experiment' \(the experiment is named <name>\), 'predict.model_uri' .*: "
        r"replaced by one key, name",
    ):
        load_config(path)


# a sane "now"


def future_dataset() -> Dataset:
    deals = make_deals(
        [
            {"deal_id": "D1", "created_at": "2024-01-01"},
            {"deal_id": "D2", "created_at": "2030-01-01"},  # a typo
        ]
    )
    events = make_interactions(
        [
            {"deal_id": "D1", "occurred_at": "2024-03-01T10:00:00.5", "type": "call"},
            {
                "deal_id": "D1",
                "occurred_at": "2027-06-01T00:00:00.0",
                "type": "meeting",
            },  # booked ahead
        ]
    )
    return Dataset(deals, events, None)


def test_default_as_of_is_the_data_end_before_the_wall_clock() -> None:
    dataset = future_dataset()
    as_of = default_as_of(dataset, now=utc("2026-12-01T09:00:00"))
    assert as_of == utc("2024-03-01T10:00:01")
    assert rows_after(dataset, as_of) == (
        "1 deals created (first deal_id: 'D2'); 1 interactions (first deal_id: 'D1')"
    )


def test_default_as_of_never_passes_the_wall_clock() -> None:
    now = utc("2024-01-01T00:00:00.5")  # half a second after the first deal's creation
    assert default_as_of(future_dataset(), now=now) == utc("2024-01-01")


@settings(max_examples=30, deadline=None)
@given(days=st.integers(min_value=1, max_value=20_000))
def test_rows_dated_after_now_never_move_the_default_as_of(days: int) -> None:
    now = utc("2026-12-01")
    dataset = future_dataset()
    later = make_interactions(
        [{"deal_id": "D1", "occurred_at": now + pd.Timedelta(days=days), "type": "call"}]
    )
    moved = Dataset(dataset.deals, pd.concat([dataset.interactions, later]), None)
    assert default_as_of(moved, now) == default_as_of(dataset, now)


def test_an_as_of_beyond_one_horizon_after_the_data_warns_that_deals_look_idle() -> None:
    dataset = Dataset(future_dataset().deals.iloc[:1], future_dataset().interactions.iloc[:1], None)
    assert far_past_the_data(dataset, utc("2024-04-01"), 90) is None
    warning = far_past_the_data(dataset, utc("2099-01-01"), 90)
    assert warning is not None and "more than one horizon (90 days): every deal will look idle" in (
        warning
    )


def test_train_ignores_and_names_rows_dated_after_now(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from closeprob.pipeline.dataset import load_dataset

    monkeypatch.setattr(logging.getLogger("closeprob"), "propagate", True)
    config = load_config(own_data(tmp_path / "acme", DEALS + "D9,2031-01-01,,,5,retail\n"))
    dataset = load_dataset(config.data, now=utc("2026-12-01"))
    assert "D9" not in dataset.deals["deal_id"].tolist()
    assert (
        "dated at or after now (2026-12-01T00:00:00+00:00) and ignored: 1 deals created "
        "(first deal_id: 'D9')"
    ) in caplog.text


def test_a_few_rows_far_after_the_rest_are_named_as_setting_the_default_as_of() -> None:
    days = [f"2024-01-{d:02d}" for d in range(1, 29)]
    deals = make_deals([{"deal_id": f"D{i}", "created_at": day} for i, day in enumerate(days)])
    booked = make_interactions(
        [{"deal_id": "D3", "occurred_at": "2024-04-15T00:00:00.0", "type": "meeting"}]
    )
    dataset = Dataset(deals, booked, None)
    warning = stragglers(dataset, default_as_of(dataset, utc("2026-12-01")), 7)
    assert warning == (
        "the default as_of (2024-04-15T00:00:01+00:00) is set by 1 rows dated more than 7 days "
        "after the rest of the data, which ends 2024-01-28T00:00:00+00:00 (first deal_id: 'D3'); "
        "if they are typos or bookings ahead, fix them or pass --as-of 2024-01-28T00:00:01+00:00"
    )
    dense = Dataset(deals, booked.iloc[:0], None)
    assert stragglers(dense, default_as_of(dense, utc("2026-12-01")), 7) is None


def test_a_mapping_key_that_names_no_column_is_refused(
    quiet_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = own_data(quiet_store / "acme", columns={"ammount": "amount"})

    assert main(["check", "--config", str(config), "--for", "predict"]) == 2

    assert (
        "data.columns maps 'ammount' (to 'amount'), but 'ammount' is neither a contract column "
        "nor a configured attribute; use one of ['deal_id', 'created_at'"
    ) in capsys.readouterr().out


CORRUPTIONS = {
    "created_at": ("created_at", "yesterday", "has unparseable timestamps"),
    "amount": ("amount", "-3", "is negative"),
    "outcome": ("outcome", "maybe", "is not one of"),
    "deal_id": ("deal_id", "", "is empty"),
}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(sorted(CORRUPTIONS)), unique=True, min_size=1))
def test_collecting_lists_each_broken_rule_once_and_strict_raises_the_first(
    broken: list[str],
) -> None:
    from closeprob.pipeline.errors import DataContractError
    from closeprob.pipeline.validate import Problems, validate_deals

    deals = pd.read_csv(io.StringIO(DEALS), dtype="str", keep_default_na=False)
    deals = deals.replace("", None)
    for row, name in enumerate(broken):  # one rule broken per row
        column, value, _ = CORRUPTIONS[name]
        deals.loc[row % len(deals), column] = value or None
    problems = Problems(strict=False)
    validate_deals(deals, "deals.csv", ("industry",), problems)
    for name in broken:
        column, _, problem = CORRUPTIONS[name]
        matching = [m for m in problems.errors if f"column {column!r} {problem}" in m]
        assert len(matching) == 1, problems.errors
    with pytest.raises(DataContractError) as first:
        validate_deals(deals, "deals.csv", ("industry",))
    assert str(first.value) == problems.errors[0]
