"""What managers do today, as scores to compare against: RFM, ABC by value, and a logistic
regression on the same features. Each gets a probability map fitted on the calibration slice
so that log loss and ECE compare fairly; the map is monotone, so rankings are the baseline's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    indicators, one-hot categoricals (unseen levels ignored)."""
    numeric = [c for c in train_x.columns if c not in categorical]
    prepare = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                numeric,
            ),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore", min_frequency=20),
                ),
                categorical,
            ),
        ]
    )
    model = Pipeline(
        [("prepare", prepare), ("fit", LogisticRegression(max_iter=2000, random_state=seed))]
    )
    return model.fit(_as_objects(train_x, categorical), train_y)


def predict_logistic(model: Pipeline, features: pd.DataFrame, categorical: list[str]) -> np.ndarray:
    return np.asarray(model.predict_proba(_as_objects(features, categorical))[:, 1])


def _as_objects(features: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    # scikit-learn's imputers want object columns with NaN, not pandas categoricals.
    return features.astype({c: object for c in categorical}).where(features.notna(), np.nan)
