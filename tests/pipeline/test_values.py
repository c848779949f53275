"""Values as CRMs write them: amounts with separators and currency signs, booleans, id lists."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeprob.pipeline.values import (
    NumberFormat,
    empty_ids,
    parse_amounts,
    parse_flags,
    split_id_lists,
)

IDS = pd.Series([f"D{i}" for i in range(10)])


def amounts(*values: object, declared: NumberFormat | None = None) -> tuple[list[float], list[str]]:
    raw = pd.Series(list(values), dtype="str")
    numbers, errors = parse_amounts(raw, "deals.csv", "Amount", IDS[: len(values)], declared)
    return numbers.tolist(), errors


def test_thousands_separators_and_currency_signs_are_read_when_the_column_shows_its_format() -> (
    None
):
    numbers, errors = amounts("12,500.00", "$1,200", "USD 300.5", "(40.25)", "CHF 12'500")
    assert errors == []
    assert numbers == [12500.0, 1200.0, 300.5, -40.25, 12500.0]


def test_european_amounts_are_read_when_a_value_proves_the_decimal_comma() -> None:
    numbers, errors = amounts("1.234,50 €", "17.000", "3,5")
    assert errors == [] and numbers == [1234.5, 17000.0, 3.5]


def test_an_amount_that_reads_two_ways_is_refused_showing_it() -> None:
    _, errors = amounts("17.000", "250")
    assert len(errors) == 1
    assert "'17.000'" in errors[0] and "data.number_format" in errors[0]


def test_a_declared_format_reads_the_ambiguous_values() -> None:
    european = NumberFormat(decimal=",", thousands=".")
    numbers, errors = amounts("17.000", "250", declared=european)
    assert errors == [] and numbers == [17000.0, 250.0]


def test_a_value_that_does_not_fit_the_declared_format_is_an_error_showing_it() -> None:
    _, errors = amounts("1,5", "12.50", declared=NumberFormat(decimal=",", thousands="."))
    assert len(errors) == 1 and "'12.50'" in errors[0] and "deal_id 'D1'" in errors[0]


def test_a_column_mixing_formats_is_refused_showing_one_of_each() -> None:
    _, errors = amounts("12,500.00", "1.234,5")
    assert errors and "'12,500.00'" in errors[0] and "'1.234,5'" in errors[0]


def test_text_that_is_no_number_is_an_error_showing_the_value() -> None:
    _, errors = amounts("12 EUR", "twelve")
    assert len(errors) == 1 and "'twelve'" in errors[0] and "'D1'" in errors[0]


def test_flags_read_every_spelling_and_refuse_others_showing_them() -> None:
    flags = parse_flags(pd.Series(["true", "FALSE", " Yes", "0"]), "f.csv", "IsWon", IDS[:4])
    assert flags.tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match=r"'IsWon' is not true/false in 1 rows.*'won'"):
        parse_flags(pd.Series(["true", "won"]), "f.csv", "IsWon", IDS[:2])


def test_id_lists_become_one_row_per_id_without_blanks_or_repeats() -> None:
    frame = pd.DataFrame({"deal_id": ["1;2", " 3 ", "", None, "4;;4"], "n": range(5)})
    split = split_id_lists(frame, "deal_id")
    assert split["deal_id"].tolist() == ["1", "2", "3", "4"]
    assert split["n"].tolist() == [0, 0, 1, 4]
    assert empty_ids(frame, "deal_id") == 2


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=20))
def test_grouped_amounts_read_back_as_the_numbers_written(values: list[int]) -> None:
    written = [f"{v:,}.{v % 100:02d}" for v in values]
    raw = pd.Series(written, dtype="str")
    numbers, errors = parse_amounts(raw, "f", "Amount", pd.Series(range(len(values))))
    assert errors == []
    assert numbers.tolist() == [v + (v % 100) / 100 for v in values]
