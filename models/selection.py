"""Time-honest model choice: the booster's tree count and its weight in the blend with the
logistic regression, decided by rolling-origin validation over several later folds (averaged,
with the spread kept), not on one slice; a tie goes to the simpler model.

Fold k validates on a run of snapshot dates ending k runs before the last date of the train
and validation slices, and fits on the dates whose label window closes before that run starts
(an embargo of one horizon; on histories too short to leave 4 such dates, on every earlier
date, as the validation slice always was). The last fold is the validation slice itself.
Nothing here sees the calibration or test slices. Only the rows of every other deal (by a
stable hash, `judging_deals`) on a fold's validation dates judge it; the other deals' rows
there judge nothing, so they may fit the calibration map (`Selection.judged_rows`).

Frames and masks in, a `Selection` out; no config, no disk, no MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from closeprob.models.baselines import fit_logistic, logistic_logit
from closeprob.models.classifier import encode_features, fit_categories
from closeprob.models.split import deal_buckets
from closeprob.models.training import (
    BLEND_WEIGHTS,
    blend_losses,
    fit_early_stopped,
    sample_rows,
    tree_count,
)

MIN_FOLD_ROWS = 50  # a fold with fewer train or validation rows (or one class) is skipped
MIN_FOLD_DATES = 4  # fewer dates a horizon before a fold's run: no embargo for that fold


@dataclass(frozen=True)
class Fold:
    """Snapshot dates a fold fits on and validates on."""

    train: pd.DatetimeIndex
    validation: pd.DatetimeIndex


@dataclass(frozen=True)
class Selection:
    """The choice and what it rests on: each fold's early-stopping tree count and, per blend
    weight (BLEND_WEIGHTS order), each fold's Platt-scaled validation log loss."""

    trees: int
    blend_weight: float
    trees_by_fold: list[int]
    losses: np.ndarray  # folds × weights
    dates: list[Fold] = field(default_factory=list)

    @property
    def judged_dates(self) -> pd.DatetimeIndex:
        """Every snapshot date a used fold validated on."""
        dates = [fold.validation for fold in self.dates]
        return pd.DatetimeIndex(np.concatenate(dates) if dates else []).unique().sort_values()

    def judged_rows(self, features: pd.DataFrame) -> pd.Series:
        """The rows that chose the tree count and the blend weight: the judging deals' rows on
        the judged dates (they early-stopped a fold's booster and weighed its blend), which
        must never fit the calibration map (`models/cross_fit.py`)."""
        on_date = features["as_of"].isin(self.judged_dates)
        return on_date & judging_deals(features["deal_id"])

    def figures(self) -> dict[str, float]:
        """Metrics to log: the choice, fold count, spread of the tree counts, and the mean
        and spread over folds of the chosen weight's log loss and of its difference to the
        booster alone (weight 1) and to the logistic regression alone (weight 0)."""
        chosen = self.losses[:, _column(self.blend_weight)]
        booster, linear = self.losses[:, _column(1.0)], self.losses[:, _column(0.0)]
        return {
            "selection_folds": float(len(self.trees_by_fold)),
            "selection_trees": float(self.trees),
            "selection_trees_min": float(min(self.trees_by_fold)),
            "selection_trees_max": float(max(self.trees_by_fold)),
            "selection_log_loss": float(chosen.mean()),
            "selection_log_loss_sd": float(chosen.std(ddof=0)),
            "selection_minus_booster_log_loss": float((chosen - booster).mean()),
            "selection_minus_logistic_log_loss": float((chosen - linear).mean()),
        }


def _column(weight: float) -> int:
    return int(np.argmin(np.abs(np.asarray(BLEND_WEIGHTS) - weight)))


def judging_deals(deal_ids: pd.Series) -> pd.Series:
    """True for the deals whose rows on a fold's validation dates judge it: the even stable
    hash buckets (`deal_buckets`), half the deals, the same in every run. The odd half's rows
    on those dates judge nothing and stay free to fit the calibration map's slope: excluding
    every row on those dates cost the slope a third to two thirds of its rows (Olist: its
    standard error 0.041 -> 0.114; docs/model-quality.md, round 7)."""
    return pd.Series(deal_buckets(deal_ids) % 2 == 0, index=deal_ids.index)


def rolling_folds(
    train: pd.DatetimeIndex, validation: pd.DatetimeIndex, horizon_days: int, folds: int
) -> list[Fold]:
    """Up to `folds` folds, latest first: fold k validates on the `len(validation)` dates
    ending k such runs before the last validation date, and fits on earlier dates whose label
    window (as_of, as_of + horizon] ends before the fold's first validation date (all earlier
    dates when fewer than MIN_FOLD_DATES qualify)."""
    dates = pd.DatetimeIndex(train.append(validation)).sort_values().unique()
    run = len(validation)
    horizon = pd.Timedelta(days=horizon_days)
    made = []
    for k in range(folds):
        stop = len(dates) - k * run
        valid = dates[max(stop - run, 0) : stop]
        if len(valid) == 0:
            break
        fit = dates[: max(stop - run, 0)]
        embargoed = fit[(fit + horizon) < pd.Timestamp(valid[0])]
        # Short histories (a 30-day horizon over a few months) leave no date a full horizon
        # before the run: then fit on every earlier date, as the validation slice always was.
        fit = embargoed if len(embargoed) >= MIN_FOLD_DATES else fit
        if len(fit) == 0:
            break
        made.append(Fold(pd.DatetimeIndex(fit), pd.DatetimeIndex(valid)))
    return made


def select_by_rolling_origin(
    features: pd.DataFrame,
    labels: pd.Series,
    folds: list[Fold],
    names: list[str],
    categorical: list[str],
    params: dict[str, Any],
    seed: int,
    logistic_rows: int | None = None,
    booster_rows: int | None = None,
) -> Selection:
    """Each usable fold: the booster early-stopped on its validation dates' rows of the
    judging deals (`judging_deals`), the logistic regression fitted beside it, and every
    blend weight's Platt-scaled log loss there. The
    tree count is the folds' mean; the weight is the simplest (lowest booster weight) whose
    mean loss is within one standard error (over folds) of the best weight's: the booster
    must beat the linear model by more than the folds disagree to earn its place."""
    trees, losses, used = [], [], []
    judges = judging_deals(features["deal_id"])
    for fold in folds:
        fit = features["as_of"].isin(fold.train)
        valid = features["as_of"].isin(fold.validation) & judges
        if not (_usable(labels[fit]) and _usable(labels[valid])):
            continue
        fit = sample_rows(fit, booster_rows, seed)
        categories = fit_categories(features.loc[fit, categorical], categorical)
        fit_x, valid_x = (encode_features(features, names, categories, r) for r in (fit, valid))
        booster = fit_early_stopped(fit_x, labels[fit], valid_x, labels[valid], params, seed)
        linear = fit_logistic(fit_x, labels[fit], categorical, seed, logistic_rows)
        booster_raw = np.asarray(booster.predict(valid_x, raw_score=True), dtype=float)
        linear_raw = logistic_logit(linear, valid_x, categorical)
        losses.append(blend_losses(booster_raw, linear_raw, labels[valid].to_numpy()))
        trees.append(tree_count(booster))
        used.append(fold)
    if not used:
        raise ValueError(
            f"no rolling-origin fold has {MIN_FOLD_ROWS}+ rows of both labels to fit and to "
            f"validate on (half the deals judge; {len(folds)} fold(s) tried); use a longer "
            "history"
        )
    table = np.asarray(losses)
    return Selection(
        trees=max(1, round(float(np.mean(trees)))),
        blend_weight=simplest_within_one_se(table),
        trees_by_fold=trees,
        losses=table,
        dates=used,
    )


def simplest_within_one_se(losses: np.ndarray) -> float:
    """The lowest booster weight (the simplest model: weight 0 is the logistic regression
    alone) whose mean loss over folds (rows) is within one standard error of the best
    weight's; the standard error is that of the paired per-fold difference (0 with one fold:
    then the best weight itself, ties to the simpler)."""
    means = np.round(losses.mean(axis=0), 9)
    best = int(np.argmin(means))
    folds = losses.shape[0]
    order = np.argsort(np.asarray(BLEND_WEIGHTS), kind="stable")  # weight 0 first
    for column in order:
        gap = losses[:, column] - losses[:, best]
        se = float(gap.std(ddof=1) / np.sqrt(folds)) if folds > 1 else 0.0
        if means[column] - means[best] <= se:
            return float(BLEND_WEIGHTS[column])
    return float(BLEND_WEIGHTS[best])


def _usable(labels: pd.Series) -> bool:
    return len(labels) >= MIN_FOLD_ROWS and labels.nunique() == 2
