"""Splits by time over snapshot dates: train, validation, calibration, test — never random rows."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


class SplitError(ValueError):
    """Too few snapshot dates for the requested split."""


@dataclass(frozen=True)
class TimeSplit:
    """Snapshot dates of each slice, in time order, each slice strictly after the previous one."""

    train: pd.DatetimeIndex
    validation: pd.DatetimeIndex
    calibration: pd.DatetimeIndex
    test: pd.DatetimeIndex

    def slice_of(self, as_of: pd.Series) -> pd.Series:
        """Name of the slice each `as_of` belongs to.

        Dates in no slice (e.g. the embargo) get ''.
        """
        names = pd.Series("", index=as_of.index, dtype="str")
        for name in ("train", "validation", "calibration", "test"):
            names = names.mask(as_of.isin(getattr(self, name)), name)
        return names


def split_dates(
    dates: pd.DatetimeIndex,
    horizon_days: int,
    test_share: float,
    calibration_share: float,
    validation_share: float,
) -> TimeSplit:
    """Train | validation | calibration | embargo | test, by snapshot date.

    - test: the last `test_share` of dates;
    - embargo: dates whose label window (as_of, as_of + horizon] reaches the first test date are
      dropped, so every label used in fitting is known before the test period starts;
    - calibration: the last `calibration_share` of the remaining dates;
    - validation (early stopping only): the dates in the horizon before calibration (at least
      `validation_share`), so training labels are all known before calibration starts;
    - train: everything earlier.
    """
    dates = pd.DatetimeIndex(dates).sort_values().unique()
    horizon = pd.Timedelta(days=horizon_days)
    n = len(dates)
    n_test, n_cal, n_val = (
        max(1, round(n * share)) for share in (test_share, calibration_share, validation_share)
    )
    test = dates[n - n_test :] if n >= n_test else dates[:0]
    before_test = dates[: n - n_test]
    if len(test) > 0:
        before_test = before_test[before_test + horizon < test[0]]
    calibration = before_test[max(len(before_test) - n_cal, 0) :]
    earlier = before_test[: len(before_test) - len(calibration)]
    in_gap = earlier[earlier + horizon >= calibration[0]] if len(calibration) else earlier[:0]
    n_val = max(n_val, len(in_gap))
    validation = earlier[max(len(earlier) - n_val, 0) :]
    train = earlier[: len(earlier) - len(validation)]
    split = TimeSplit(train=train, validation=validation, calibration=calibration, test=test)
    empty = [
        name
        for name in ("train", "validation", "calibration", "test")
        if len(getattr(split, name)) == 0
    ]
    if empty:
        raise SplitError(
            f"{n} snapshot dates cannot be split into train/validation/calibration/test with a "
            f"{horizon_days}-day horizon: {', '.join(empty)} would be empty. Use data spanning "
            "more time, a shorter snapshots.horizon_days, or a smaller snapshots.every_days"
        )
    return split
