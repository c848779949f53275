"""Splits by time over snapshot dates: train, validation, calibration, test — never random rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    - embargo: dates whose label window [as_of, as_of + horizon) reaches the first test date are
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


HOLDOUT_BUCKETS = 100


def deal_buckets(deal_ids: pd.Series) -> np.ndarray:
    """A stable bucket 0–99 per deal id (pandas' fixed-key hash of the text): the same deal
    falls in the same bucket in every run and every model version."""
    hashed = pd.util.hash_pandas_object(deal_ids.astype(str), index=False).to_numpy()
    return (hashed % HOLDOUT_BUCKETS).astype(int)


@dataclass(frozen=True)
class DeploymentSplit:
    """Roles of the labelled snapshot rows for the deployed model.

    `fit`: rows its booster is fitted on (every deal's but the comparison deals'); `calibration`:
    the rows in the most recent window of every fitted deal, for its calibrator, scored out of
    fold (`models/cross_fit.py`: a subset of `fit`); `comparison`: rows of held-out deals in the
    same window, seen by no deployed fit (champion/challenger and the deployed model's own
    figures).
    """

    fit: pd.Series
    calibration: pd.Series
    comparison: pd.Series
    window: pd.DatetimeIndex

    def role_of(self, index: pd.Index) -> pd.Series:
        roles = pd.Series("", index=index, dtype="str")
        for name in ("fit", "calibration", "comparison"):
            roles = roles.mask(getattr(self, name), name)
        return roles


def deployment_split(
    snapshots: pd.DataFrame, window_share: float, holdout_share: float, min_rows: int = 300
) -> DeploymentSplit:
    """Every labelled (deal_id, as_of) row gets a deployment role.

    The window is the last `window_share` of snapshot dates, widened back a date at a time
    until the calibration rows number `min_rows` (small data). A `holdout_share` of the deals
    with a row in it, by a stable hash of their id, are held out for comparison: all their
    rows leave the fit, so they are disjoint from it by deal, not only by row. Every other row
    is fit; the window's rows of every other deal calibrate (cross-fitted).
    """
    dates = pd.DatetimeIndex(snapshots["as_of"].unique()).sort_values()
    bucket = pd.Series(deal_buckets(snapshots["deal_id"]), index=snapshots.index)
    cut = round(HOLDOUT_BUCKETS * holdout_share)
    size = max(1, round(len(dates) * window_share))
    while True:
        window = dates[len(dates) - size :]
        in_window = snapshots["as_of"].isin(window)
        held = snapshots["deal_id"].isin(snapshots.loc[in_window, "deal_id"].unique())
        # The same hash buckets as before cross-fitting held out for comparison, so a
        # champion trained then held out the same deals.
        comparison_deal = held & (bucket >= cut) & (bucket < 2 * cut)
        calibration = in_window & ~comparison_deal
        if int(calibration.sum()) >= min_rows or size >= len(dates):
            break
        size += 1
    return DeploymentSplit(
        fit=~comparison_deal,
        calibration=calibration,
        comparison=comparison_deal & in_window,
        window=window,
    )
