"""The data contract: every refusal names the file, the column, the count and the first ids."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.validate import validate_deals, validate_interactions
from closeprob.pipeline.values import NumberFormat
from tests.conftest import utc


def deals_frame(**columns: list[object]) -> pd.DataFrame:
    """Three valid deals as raw text (as read from a CSV); keyword columns replace or add."""
    raw: dict[str, list[object]] = {
        "deal_id": ["D1", "D2", "D3"],
        "created_at": ["2024-01-01", "2024-01-02", "2024-01-03"],
        "closed_at": [None, "2024-02-01", "2024-02-02"],
        "outcome": [None, "won", "lost"],
        "amount": ["1000", None, "250.5"],
    }
    return pd.DataFrame(raw | columns)


def interactions_frame(**columns: list[object]) -> pd.DataFrame:
    """Three valid interactions of deals D1 and D2 as raw text; keyword columns replace or add."""
    raw: dict[str, list[object]] = {
        "deal_id": ["D1", "D1", "D2"],
        "occurred_at": ["2024-01-05", "2024-01-06T10:00:00+02:00", "2024-01-07"],
        "type": ["email", "call", "meeting"],
        "channel": ["email", "phone", None],
        "direction": ["outbound", "Inbound", None],
        "value": ["1", None, "2.5"],
    }
    return pd.DataFrame(raw | columns)


KNOWN_DEALS = pd.Series(["D1", "D2", "D3"])


# validate_deals: columns and rows


def test_a_missing_required_column_is_named_with_the_columns_found() -> None:
    deals = deals_frame().drop(columns="outcome")
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: missing required column 'outcome'; found columns \['deal_id', ",
    ):
        validate_deals(deals, "deals.csv")


def test_a_misspelt_created_at_column_suggests_the_intended_name() -> None:
    deals = deals_frame().rename(columns={"created_at": "created_on"})
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: missing required column 'created_at' \(did you mean 'created_on'\?\)",
    ):
        validate_deals(deals, "deals.csv")


def test_a_misspelt_deal_id_column_suggests_the_intended_name() -> None:
    deals = deals_frame().rename(columns={"deal_id": "deal_ids"})
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: missing required column 'deal_id' \(did you mean 'deal_ids'\?\)",
    ):
        validate_deals(deals, "deals.csv")


def test_a_missing_column_is_not_matched_to_another_required_column() -> None:
    deals = deals_frame().drop(columns="created_at")
    with pytest.raises(DataContractError, match=r"deals\.csv: missing required column") as error:
        validate_deals(deals, "deals.csv")
    assert "did you mean 'closed_at'" not in str(error.value)


def test_declared_attribute_columns_that_are_missing_are_reported() -> None:
    deals = deals_frame(industry=["retail", "saas", "retail"])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: configured attributes missing: 'region', 'company_size' \(asked for "
        r"by data.attributes in the config\); add the columns, map them",
    ):
        validate_deals(deals, "deals.csv", attributes=("industry", "region", "company_size"))


def test_declared_attribute_columns_are_kept_as_text() -> None:
    deals = validate_deals(
        deals_frame(industry=[" retail", "saas", None]), "deals.csv", ["industry"]
    )
    assert deals["industry"].tolist()[:2] == ["retail", "saas"]
    assert pd.isna(deals["industry"].iloc[2])


def test_a_header_only_deals_table_is_refused() -> None:
    deals = deals_frame().iloc[0:0]
    with pytest.raises(DataContractError, match=r"deals\.csv: no deal rows; the file has a header"):
        validate_deals(deals, "deals.csv")


# validate_deals: ids


def test_an_empty_deal_id_is_refused_with_its_row_number() -> None:
    deals = deals_frame(deal_id=["D1", None, "D3"])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'deal_id' is empty in 1 row \(first deal_id: '<row 1>'\)",
    ):
        validate_deals(deals, "deals.csv")


def test_a_blank_deal_id_is_refused_like_an_empty_one() -> None:
    deals = deals_frame(deal_id=["D1", " ", "D3"])
    with pytest.raises(DataContractError, match=r"deals\.csv: column 'deal_id' is empty in 1 row"):
        validate_deals(deals, "deals.csv")


def test_duplicate_deal_ids_are_refused_with_the_count_and_first_ids() -> None:
    deals = deals_frame(deal_id=["D7", "D8", "D7"])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'deal_id' is duplicated in 2 rows \(first deal_id: 'D7', 'D7'\)"
        r"; keep one row per deal",
    ):
        validate_deals(deals, "deals.csv")


# validate_deals: timestamps


def test_an_unparseable_created_at_shows_the_first_bad_value() -> None:
    deals = deals_frame(created_at=["2024-01-01", "01/02/2024", "yesterday"])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'created_at' has unparseable timestamps "
        r"\(first value: '01/02/2024'\) in 2 rows \(first deal_id: 'D2', 'D3'\)",
    ):
        validate_deals(deals, "deals.csv")


def test_an_empty_created_at_is_refused() -> None:
    deals = deals_frame(created_at=["2024-01-01", None, "2024-01-03"])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'created_at' is empty in 1 row \(first deal_id: 'D2'\)",
    ):
        validate_deals(deals, "deals.csv")


def test_closed_at_before_created_at_is_refused() -> None:
    deals = deals_frame(closed_at=[None, "2023-12-31", "2024-02-02"])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'closed_at' is before 'created_at' in 1 row "
        r"\(first deal_id: 'D2'\)",
    ):
        validate_deals(deals, "deals.csv")


def test_timestamps_with_offsets_are_converted_to_utc() -> None:
    deals = validate_deals(
        deals_frame(created_at=["2024-03-01T09:30:00+01:00", "2024-01-02", "2024-01-03"]),
        "deals.csv",
    )
    assert deals["created_at"].iloc[0] == utc("2024-03-01T08:30:00")


def test_timestamps_without_offsets_are_taken_as_utc() -> None:
    deals = validate_deals(
        deals_frame(created_at=["2024-01-01T09:30:00", "2024-01-02", "2024-01-03"]), "deals.csv"
    )
    assert deals["created_at"].iloc[0] == utc("2024-01-01T09:30:00")


def test_naive_datetime_columns_are_taken_as_utc() -> None:
    deals = deals_frame()
    deals["created_at"] = pd.to_datetime(deals["created_at"])
    assert validate_deals(deals, "deals.csv")["created_at"].iloc[1] == utc("2024-01-02")


# validate_deals: outcome


def test_an_outcome_other_than_won_or_lost_is_refused() -> None:
    deals = deals_frame(outcome=[None, "won", "closed-lost"])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'outcome' is not one of \['won', 'lost'\] in 1 row "
        r"\(first deal_id: 'D3'\)",
    ):
        validate_deals(deals, "deals.csv")


def test_an_outcome_on_an_open_deal_is_refused() -> None:
    deals = deals_frame(outcome=["won", "won", "lost"])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'outcome' is set on an open deal \(no 'closed_at'\) in 1 row "
        r"\(first deal_id: 'D1'\)",
    ):
        validate_deals(deals, "deals.csv")


def test_a_closed_deal_with_an_empty_outcome_is_refused() -> None:
    deals = deals_frame(outcome=[None, None, "lost"])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'outcome' is empty on a closed deal in 1 row "
        r"\(first deal_id: 'D2'\)",
    ):
        validate_deals(deals, "deals.csv")


def test_outcome_case_and_spaces_are_normalised() -> None:
    deals = validate_deals(deals_frame(outcome=[None, "Won", " LOST "]), "deals.csv")
    assert deals["outcome"].tolist()[1:] == ["won", "lost"]


# validate_deals: amount


def test_a_negative_amount_is_refused() -> None:
    deals = deals_frame(amount=["1000", "-5", None])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'amount' is negative in 1 row \(first deal_id: 'D2'\)",
    ):
        validate_deals(deals, "deals.csv")


def test_a_non_numeric_amount_is_refused_showing_the_value() -> None:
    deals = deals_frame(amount=["12 apples", "abc", "3"])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'amount' is not numeric in 2 rows "
        r"\(first deal_id: 'D1', 'D2'\).*first value: '12 apples'",
    ):
        validate_deals(deals, "deals.csv")


def test_an_amount_that_reads_two_ways_is_refused_unless_the_format_is_declared() -> None:
    deals = deals_frame(amount=["17.000", None, "3"])
    with pytest.raises(DataContractError, match=r"1 amounts that read two ways \(first: '17\.000'"):
        validate_deals(deals, "deals.csv")
    european = NumberFormat(decimal=",", thousands=".")
    typed = validate_deals(deals, "deals.csv", number_format=european)
    assert typed["amount"].tolist()[::2] == [17000.0, 3.0]


def test_amounts_with_separators_and_currency_signs_are_read_when_the_column_shows_them() -> None:
    typed = validate_deals(deals_frame(amount=["12,500.00", "$1,200", None]), "deals.csv")
    assert typed["amount"].tolist()[:2] == [12500.0, 1200.0]


def test_an_infinite_amount_is_refused() -> None:
    deals = deals_frame(amount=["1000", "2", "inf"])
    with pytest.raises(
        DataContractError,
        match=r"deals\.csv: column 'amount' is infinite in 1 row \(first deal_id: 'D3'\)",
    ):
        validate_deals(deals, "deals.csv")


def test_a_blank_amount_is_missing_rather_than_an_error() -> None:
    deals = validate_deals(deals_frame(amount=["  ", None, "7"]), "deals.csv")
    assert math.isnan(deals["amount"].iloc[0]) and math.isnan(deals["amount"].iloc[1])


def test_a_valid_deals_table_passes_with_typed_columns() -> None:
    deals = validate_deals(deals_frame(), "deals.csv")
    for column in ("created_at", "closed_at"):
        assert isinstance(deals[column].dtype, pd.DatetimeTZDtype)
        assert str(deals[column].dt.tz) == "UTC"
    assert deals["amount"].dtype == "float64"
    assert deals["amount"].tolist()[::2] == [1000.0, 250.5]
    assert deals["deal_id"].tolist() == ["D1", "D2", "D3"]
    assert deals["closed_at"].iloc[1] == utc("2024-02-01")
    assert pd.isna(deals["closed_at"].iloc[0]) and pd.isna(deals["outcome"].iloc[0])


def test_validate_deals_does_not_mutate_its_argument() -> None:
    raw = deals_frame(outcome=[None, "Won", "lost"])
    before = raw.copy()
    validate_deals(raw, "deals.csv")
    pd.testing.assert_frame_equal(raw, before)


# validate_interactions


def test_interactions_missing_a_required_column_are_refused() -> None:
    interactions = interactions_frame().drop(columns="type")
    with pytest.raises(
        DataContractError,
        match=r"interactions\.csv: missing required column 'type'; found columns",
    ):
        validate_interactions(interactions, "interactions.csv", KNOWN_DEALS)


def test_an_empty_occurred_at_is_refused() -> None:
    interactions = interactions_frame(occurred_at=["2024-01-05", None, None])
    with pytest.raises(
        DataContractError,
        match=r"interactions\.csv: column 'occurred_at' is empty in 2 rows "
        r"\(first deal_id: 'D1', 'D2'\)",
    ):
        validate_interactions(interactions, "interactions.csv", KNOWN_DEALS)


def test_a_direction_other_than_inbound_or_outbound_is_refused() -> None:
    interactions = interactions_frame(direction=["outbound", "sideways", None])
    with pytest.raises(
        DataContractError,
        match=r"interactions\.csv: column 'direction' is not one of \['inbound', 'outbound'\] "
        r"in 1 row \(first deal_id: 'D1'\)",
    ):
        validate_interactions(interactions, "interactions.csv", KNOWN_DEALS)


def test_a_non_numeric_interaction_value_is_refused() -> None:
    interactions = interactions_frame(value=["1", "2", "high"])
    with pytest.raises(
        DataContractError,
        match=r"interactions\.csv: column 'value' is not numeric in 1 row \(first deal_id: 'D2'\)",
    ):
        validate_interactions(interactions, "interactions.csv", KNOWN_DEALS)


def test_interactions_of_unknown_deals_fail_by_default_with_count_and_first_ids() -> None:
    interactions = interactions_frame(deal_id=["D1", "X9", "X8"])
    with pytest.raises(
        DataContractError,
        match=r"interactions\.csv: column 'deal_id' names deals missing from the deals table "
        r"in 2 rows \(first deal_id: 'X9', 'X8'\)",
    ):
        validate_interactions(interactions, "interactions.csv", KNOWN_DEALS)


def test_interactions_of_unknown_deals_are_dropped_with_a_warning_when_asked() -> None:
    interactions = interactions_frame(deal_id=["D1", "X9", "D2"])
    with pytest.warns(
        UserWarning,
        match=r"interactions\.csv: dropped 1 interactions of deals missing from the deals table "
        r"\(first deal_id: 'X9'\)",
    ):
        kept = validate_interactions(
            interactions, "interactions.csv", KNOWN_DEALS, unknown_deals="drop"
        )
    assert kept["deal_id"].tolist() == ["D1", "D2"]
    assert kept["type"].tolist() == ["email", "meeting"]
    assert kept.index.tolist() == [0, 1]


def test_valid_interactions_pass_with_typed_columns() -> None:
    interactions = validate_interactions(interactions_frame(), "interactions.csv", KNOWN_DEALS)
    assert str(interactions["occurred_at"].dt.tz) == "UTC"
    assert interactions["occurred_at"].iloc[1] == utc("2024-01-06T08:00:00")
    assert interactions["direction"].tolist()[:2] == ["outbound", "inbound"]
    assert interactions["value"].dtype == "float64"
    assert interactions["value"].iloc[2] == 2.5


def test_nan_spelled_out_in_a_numeric_column_is_refused() -> None:
    deals = deals_frame(amount=["100", "NaN", "nan"])
    with pytest.raises(
        DataContractError,
        match=r"column 'amount' is not numeric in 2 rows \(first deal_id: 'D2', 'D3'\)",
    ):
        validate_deals(deals, "deals.csv")


def test_a_closed_at_of_spaces_is_empty_like_an_empty_cell() -> None:
    deals = validate_deals(deals_frame(closed_at=["   ", "2024-02-01", "2024-02-02"]), "deals.csv")
    assert pd.isna(deals["closed_at"].iloc[0])


def test_first_ids_skip_missing_ids_and_never_print_nan() -> None:
    """An error or warning names real deal ids; an unmapped or empty deal_id column reads as
    'none readable', not as 'nan'."""
    import pandas as pd

    from closeprob.pipeline.validate import first_ids

    assert first_ids([float("nan"), None, "D1", pd.NA, "D2"]) == "'D1', 'D2'"
    assert first_ids(pd.Series([None, None], dtype="str")) == "none readable"
    assert first_ids(pd.Series([float("nan")])) == "none readable"
