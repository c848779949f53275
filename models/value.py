"""Deal value: the declared amount, else a LightGBM estimate, else the segment median."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from closeprob.features.attributes import normalise_levels
from closeprob.models.classifier import encode_features, fit_categories, known_levels
from closeprob.models.model_input import encode_columns, predict_distinct_rows, same_levels

DECLARED, QUOTE, MODEL, SEGMENT_MEDIAN = "declared", "quote", "model", "segment_median"
SMEARING_FOLDS = 3


@dataclass(frozen=True)
class DealValueModel:
    """Estimates a deal's value from attributes known at creation.

    `regressor` is None when a model was not warranted (too few declared amounts, no
    attributes, or no better than the segment median on later deals, in squared error); then
    the median of the deal's segment is used (the global median for an unseen or missing
    segment). The regressor predicts log(1 + amount); `smearing` (Duan's factor, the mean of
    exp(residual) out of fold) turns its back-transform from a median into a mean, which is
    what p × value needs. Models pickled before it have none: 1.0, the class default.
    """

    attributes: list[str]
    categories: dict[str, list[str]]
    regressor: lgb.LGBMRegressor | lgb.Booster | None
    segment: str | None
    segment_medians: dict[str, float]
    global_median: float
    smearing: float = 1.0

    def estimate(self, deals: pd.DataFrame) -> tuple[np.ndarray, str]:
        """Estimated value per deal row and which method made it (`model` or `segment_median`)."""
        if self.regressor is not None:
            return np.exp(self._log_value(deals)) * self.smearing - 1.0, MODEL
        return self.median_of_segment(deals), SEGMENT_MEDIAN

    def _log_value(self, deals: pd.DataFrame) -> np.ndarray:
        """The regressor's log(1 + amount) per deal row: once per distinct attribute row."""
        assert self.regressor is not None
        booster = self.regressor
        booster = booster.booster_ if isinstance(booster, lgb.LGBMRegressor) else booster
        if len(deals) == 0 or not same_levels(booster, self.attributes, self.categories):
            encoded = encode_features(deals, self.attributes, self.categories)
            return np.asarray(self.regressor.predict(encoded), dtype=float)
        return predict_distinct_rows(
            booster, encode_columns(deals, self.attributes, self.categories)
        )

    def median_of_segment(self, deals: pd.DataFrame) -> np.ndarray:
        if self.segment is None or self.segment not in deals.columns:
            return np.full(len(deals), self.global_median)
        segment = known_levels(deals[self.segment], list(self.segment_medians))
        return segment.map(self.segment_medians).fillna(self.global_median).to_numpy(dtype=float)


def fit_value_model(
    fit_deals: pd.DataFrame,
    select_deals: pd.DataFrame,
    attributes: list[str],
    segment: str | None,
    min_declared: int,
    seed: int,
) -> DealValueModel:
    """Fit on `fit_deals` (earlier), keep the regressor only if it beats the segment median in
    mean squared error on `select_deals` (later): the error that p × value pays for. Both use
    deals with a declared amount only."""
    fit_deals = fit_deals[fit_deals["amount"].notna()]
    if len(fit_deals) == 0:
        # No declared values at all: estimates stay empty and ranking uses p_close alone.
        return DealValueModel(attributes, {}, None, None, {}, float("nan"))
    select_deals = select_deals[select_deals["amount"].notna()]
    fallback = _median_model(fit_deals, attributes, segment)
    if len(fit_deals) < min_declared or not attributes or len(select_deals) == 0:
        return fallback
    candidate = _with_regressor(fallback, fit_deals, seed)
    truth = select_deals["amount"].to_numpy(dtype=float)
    model_error = np.square(candidate.estimate(select_deals)[0] - truth).mean()
    median_error = np.square(fallback.estimate(select_deals)[0] - truth).mean()
    return candidate if model_error < median_error else fallback


def refit_value_model(chosen: DealValueModel, deals: pd.DataFrame, seed: int) -> DealValueModel:
    """The estimator to deploy: `chosen`'s method (regressor or segment median, selected on
    later deals by `fit_value_model`) fitted again on every deal with a declared amount. A
    deal's amount is known once it exists, so no later label is waited for."""
    declared = deals[deals["amount"].notna()]
    if len(declared) == 0 or np.isnan(chosen.global_median):
        return chosen
    refitted = _median_model(declared, chosen.attributes, chosen.segment)
    return refitted if chosen.regressor is None else _with_regressor(refitted, declared, seed)


def _median_model(
    declared: pd.DataFrame, attributes: list[str], segment: str | None
) -> DealValueModel:
    """Segment medians (and the global one) of deals with a declared amount; no regressor."""
    medians: dict[str, float] = {}
    if segment is not None and segment in declared.columns:
        by_segment = declared.groupby(normalise_levels(declared[segment]))["amount"]
        medians = {str(k): float(v) for k, v in by_segment.median().items()}
    global_median = float(declared["amount"].median()) if len(declared) else 0.0
    return DealValueModel(attributes, {}, None, segment, medians, global_median)


def _with_regressor(medians: DealValueModel, declared: pd.DataFrame, seed: int) -> DealValueModel:
    """`medians` plus a LightGBM regressor of log(1 + amount) on its attributes, and the
    smearing factor of its out-of-fold residuals."""
    categories = fit_categories(declared, medians.attributes)
    regressor = lgb.LGBMRegressor(**_regressor_params(seed))
    encoded = encode_features(declared, medians.attributes, categories)
    target = np.log1p(declared["amount"].to_numpy(dtype=float))
    regressor.fit(encoded, target)
    smearing = smearing_factor(encoded, target, seed)
    return replace(medians, categories=categories, regressor=regressor, smearing=smearing)


def smearing_factor(encoded: pd.DataFrame, log_target: np.ndarray, seed: int) -> float:
    """Duan's smearing factor, mean(exp(residual)), from residuals of regressors fitted on the
    other folds (`SMEARING_FOLDS`, every third deal row): in-sample residuals are too small
    for a booster, and would shrink the correction. One row per deal, so no deal straddles
    folds."""
    fold = np.arange(len(log_target)) % SMEARING_FOLDS
    predicted = np.empty(len(log_target))
    for number in range(SMEARING_FOLDS):
        held = fold == number
        if not held.any() or held.all():
            return 1.0
        regressor = lgb.LGBMRegressor(**_regressor_params(seed))
        regressor.fit(encoded[~held], log_target[~held])
        predicted[held] = regressor.predict(encoded[held])
    return float(np.mean(np.exp(log_target - predicted)))


def _regressor_params(seed: int) -> dict[str, Any]:
    return {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_child_samples": 20,
        "random_state": seed,
        "deterministic": True,
        "force_row_wise": True,
        "n_jobs": 2,
        "verbose": -1,
    }


def value_errors(model: DealValueModel, deals: pd.DataFrame) -> dict[str, float]:
    """MAE and MAPE (in %) of the estimate on deals with a declared amount > 0."""
    known = deals[deals["amount"].notna() & (deals["amount"] > 0)]
    if len(known) == 0:
        return {}
    estimate, _ = model.estimate(known)
    truth = known["amount"].to_numpy(dtype=float)
    return {
        "mae": float(np.abs(estimate - truth).mean()),
        "mape": float(100.0 * (np.abs(estimate - truth) / truth).mean()),
    }


def deal_values(
    deals: pd.DataFrame, model: DealValueModel | None, quotes: np.ndarray | None = None
) -> pd.DataFrame:
    """`deal_value` and `value_source` per deal row: declared amount first, else the deal's
    latest quote before as_of (`quotes`, aligned with the rows: `models/quotes.py`), else the
    estimate.

    With no model at all (a data set without values) both are empty and ranking falls back to
    probability alone.
    """
    declared = deals["amount"].to_numpy(dtype=float, na_value=np.nan)
    value = declared.copy()
    source = np.where(np.isnan(declared), "", DECLARED).astype(object)
    if quotes is not None:
        quoted = np.isnan(value) & ~np.isnan(np.asarray(quotes, dtype=float))
        value[quoted] = np.asarray(quotes, dtype=float)[quoted]
        source[quoted] = QUOTE
    missing = np.isnan(value)
    if model is not None and missing.any():
        estimate, how = model.estimate(deals[missing])
        value[missing] = estimate
        source[missing] = np.where(np.isnan(estimate), "", how)
    return pd.DataFrame({"deal_value": value, "value_source": source}, index=deals.index)
