"""What managers do today, as scores to compare against: RFM, ABC by value, and a logistic
regression on the same features. Each gets a probability map fitted on the calibration slice
so that log loss and ECE compare fairly; the map is monotone, so rankings are the baseline's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import issparse
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def _quintile(values: pd.Series, groups: pd.Series, higher_is_better: bool) -> np.ndarray:
    """1..5 within each group (queue); missing values get 1, the least promising quintile."""
    ranks = values.groupby(groups.to_numpy()).rank(pct=True, ascending=higher_is_better)
    return np.ceil(ranks.to_numpy() * 5).clip(1, 5).astype(float) if len(ranks) else np.array([])


def rfm_scores(features: pd.DataFrame, deal_value: np.ndarray, groups: pd.Series) -> np.ndarray:
    """Classic RFM, per queue: quintiles of recency (fewer days since the last touch is better),
    frequency (interactions so far) and monetary (deal value), summed: 3 (worst) to 15."""
    recency = _quintile(features["days_since_last_touch"], groups, higher_is_better=False)
    frequency = _quintile(features["touches_total"], groups, higher_is_better=True)
    monetary = _quintile(pd.Series(deal_value, index=features.index), groups, higher_is_better=True)
    scores = np.nan_to_num(recency, nan=1.0) + np.nan_to_num(frequency, nan=1.0)
    return scores + np.nan_to_num(monetary, nan=1.0)


def fit_score_map(score: np.ndarray, y: np.ndarray) -> Pipeline:
    """A monotone (Platt) map from a baseline score to a probability."""
    model = make_pipeline(StandardScaler(), LogisticRegression())
    return model.fit(np.asarray(score, dtype=float).reshape(-1, 1), y)


def map_scores(score_map: Pipeline, score: np.ndarray) -> np.ndarray:
    return np.asarray(score_map.predict_proba(np.asarray(score, dtype=float).reshape(-1, 1))[:, 1])


def fit_logistic(
    train_x: pd.DataFrame, train_y: pd.Series, categorical: list[str], seed: int
) -> Pipeline:
    """Logistic regression on the same features: median-imputed, scaled numerics with missing
    indicators, one-hot categoricals (unseen levels ignored). One column transformer per input
    feature (its position in `train_x`), so each coefficient traces back to one feature
    (`logistic_contributions`); a feature never observed in training is imputed and scaled to 0."""
    prepare = ColumnTransformer(
        [
            (_step(position), _column_steps(name in categorical), [name])
            for position, name in enumerate(train_x.columns)
        ]
    )
    model = Pipeline(
        [("prepare", prepare), ("fit", LogisticRegression(max_iter=2000, random_state=seed))]
    )
    return model.fit(_as_objects(train_x, categorical), train_y)


def _step(position: int) -> str:
    return f"x{position}"


def _column_steps(categorical: bool) -> Pipeline:
    if categorical:
        return make_pipeline(
            SimpleImputer(strategy="constant", fill_value="(missing)"),
            OneHotEncoder(handle_unknown="ignore", min_frequency=20),
        )
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )


def predict_logistic(model: Pipeline, features: pd.DataFrame, categorical: list[str]) -> np.ndarray:
    return np.asarray(model.predict_proba(_as_objects(features, categorical))[:, 1])


def logistic_logit(model: Pipeline, features: pd.DataFrame, categorical: list[str]) -> np.ndarray:
    """The fitted logistic regression's log-odds per row of `features` (its training columns)."""
    return np.asarray(model.decision_function(_as_objects(features, categorical)), dtype=float)


def logistic_contributions(
    model: Pipeline, features: pd.DataFrame, categorical: list[str]
) -> np.ndarray:
    """Per-row log-odds terms of a `fit_logistic` model: one column per input feature (in the
    order it was fitted on: the sum of its transformed columns times their coefficients), then
    the intercept; each row sums to `logistic_logit`."""
    prepare, fitted = model.named_steps["prepare"], model.named_steps["fit"]
    transformed = prepare.transform(_as_objects(features, categorical))
    coef = fitted.coef_.ravel()
    terms = np.empty((len(features), features.shape[1] + 1))
    for position in range(features.shape[1]):
        columns = prepare.output_indices_[_step(position)]
        terms[:, position] = np.asarray(transformed[:, columns] @ coef[columns]).ravel()
    terms[:, -1] = fitted.intercept_[0]
    return terms


def varying_logistic_terms(model: Pipeline, features: pd.DataFrame, categorical: list[str]) -> int:
    """How many transformed columns have a non-zero coefficient and vary over `features`
    (the rows it was fitted on): 0 is a constant model."""
    if features.empty:
        return 0
    transformed = model.named_steps["prepare"].transform(_as_objects(features, categorical))
    spread = transformed.max(axis=0) - transformed.min(axis=0)
    spread = spread.toarray() if issparse(spread) else spread
    return int(np.count_nonzero(model.named_steps["fit"].coef_.ravel() * np.ravel(spread)))


def _as_objects(features: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    # scikit-learn's imputers want object columns with NaN, not pandas categoricals.
    return features.astype({c: object for c in categorical}).where(features.notna(), np.nan)
