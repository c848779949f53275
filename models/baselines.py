"""What managers do today, as scores to compare against: RFM (on the deal's touches, and at the
customer level by account), recency alone, ABC by value, and a logistic regression on the same
features. Each gets a probability map fitted on the calibration slice
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
from threadpoolctl import threadpool_limits

# fit_logistic's Newton solver: stop once the largest gradient entry is below LOGISTIC_TOL
# (the coefficients are then within ~1e-4 of the exact optimum; lbfgs's default 1e-4 left them
# ~1e-2 away); Newton converges in ~10 steps, 100 is a generous cap.
LOGISTIC_TOL = 1e-8
LOGISTIC_MAX_ITER = 100
# The logistic regression's matrix products run on one BLAS thread: its ~100 columns make
# products too small to share, and OpenBLAS's idle threads spin while they wait. On the shared
# 2-core machine one Newton fit on 111,810 rows took 0.9 CPU s on one thread against 17 on
# two (docs/performance.md, "Training cost"). LightGBM's own threads are not affected.
BLAS_THREADS = 1


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


def account_history(deals: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Customer-level RFM per snapshot row (`deal_id`, `as_of`), from the row's account's deals
    won strictly before `as_of`: `account_recency_days` since the latest such win (NaN: none),
    `account_frequency` (how many) and `account_monetary` (their mean declared amount; NaN:
    none declared). Rows without an account get NaN, 0, NaN."""
    keyed = rows[["deal_id", "as_of"]].reset_index(drop=True)
    if "account_id" not in deals.columns:
        nan = np.full(len(keyed), np.nan)
        return pd.DataFrame(
            {"account_recency_days": nan, "account_frequency": 0.0, "account_monetary": nan}
        )
    accounts = deals.set_index("deal_id")["account_id"]
    keyed["account_id"] = accounts.reindex(keyed["deal_id"].to_numpy()).to_numpy()
    won = deals[(deals["outcome"] == "won") & deals["closed_at"].notna()]
    won = won[won["account_id"].notna()]
    won = won.sort_values("closed_at", kind="stable")[["account_id", "closed_at", "amount"]]
    by_account = won.groupby("account_id", sort=False)
    won = won.assign(
        frequency=by_account.cumcount() + 1.0,
        amount_sum=by_account["amount"].transform(lambda a: a.fillna(0.0).cumsum()),
        amount_count=by_account["amount"].transform(lambda a: a.notna().cumsum()),
    )
    keyed["order"] = np.arange(len(keyed))
    known = keyed[keyed["account_id"].notna()].sort_values("as_of", kind="stable")
    matched = pd.merge_asof(
        known.astype({"account_id": "str"}),
        won.astype({"account_id": "str"}).rename(columns={"closed_at": "won_at"}),
        left_on="as_of",
        right_on="won_at",
        by="account_id",
        allow_exact_matches=False,  # a win at as_of is not yet known
    ).set_index("order")
    out = pd.DataFrame(index=keyed["order"])
    out["account_recency_days"] = (matched["as_of"] - matched["won_at"]).dt.total_seconds() / 86_400
    out["account_frequency"] = matched["frequency"].reindex(out.index).fillna(0.0)
    out["account_monetary"] = matched["amount_sum"] / matched["amount_count"].where(
        matched["amount_count"] > 0
    )
    return out.reset_index(drop=True)


def account_rfm_scores(history: pd.DataFrame, groups: pd.Series) -> np.ndarray:
    """RFM at the customer level, per queue: quintiles of the account's recency (fewer days
    since its last win is better), frequency (wins so far) and monetary (mean won amount),
    summed: 3 (worst; no earlier win) to 15. What repeat-purchase analysts use."""
    index = groups.index
    recency = _quintile(
        history["account_recency_days"].set_axis(index), groups, higher_is_better=False
    )
    wins = history["account_frequency"].set_axis(index)
    frequency = _quintile(wins.where(wins > 0), groups, True)  # no win yet: the worst, 1
    monetary = _quintile(history["account_monetary"].set_axis(index), groups, True)
    return sum(np.nan_to_num(q, nan=1.0) for q in (recency, frequency, monetary))


def recency_scores(history: pd.DataFrame) -> np.ndarray:
    """Recency alone: minus the days since the account's last win (no earlier win: last)."""
    days = history["account_recency_days"].to_numpy(dtype=float)
    known = days[~np.isnan(days)]
    never = (known.max() if len(known) else 0.0) + 1.0
    return -np.where(np.isnan(days), never, days)


def fit_score_map(score: np.ndarray, y: np.ndarray) -> Pipeline:
    """A monotone (Platt) map from a baseline score to a probability."""
    model = make_pipeline(StandardScaler(), LogisticRegression())
    return model.fit(np.asarray(score, dtype=float).reshape(-1, 1), y)


def map_scores(score_map: Pipeline, score: np.ndarray) -> np.ndarray:
    return np.asarray(score_map.predict_proba(np.asarray(score, dtype=float).reshape(-1, 1))[:, 1])


def logistic_rows_sample(n_rows: int, max_rows: int | None, seed: int) -> np.ndarray | None:
    """The row positions (sorted) `fit_logistic` fits on: None (every row) when `max_rows` is
    None or not below `n_rows`, else `max_rows` positions drawn without replacement by a
    generator seeded with `seed`, so a run's sample is the same on every machine."""
    if max_rows is None or n_rows <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))


def fit_logistic(
    train_x: pd.DataFrame,
    train_y: pd.Series,
    categorical: list[str],
    seed: int,
    max_rows: int | None = None,
) -> Pipeline:
    """Logistic regression on the same features: median-imputed, scaled numerics with missing
    indicators, one-hot categoricals (unseen levels ignored). One column transformer per input
    feature (its position in `train_x`), so each coefficient traces back to one feature
    (`logistic_contributions`); a feature never observed in training is imputed and scaled to 0.

    The objective is scikit-learn's default (log loss plus an L2 penalty, C = 1), solved by
    exact Newton steps (`newton-cholesky`, for rows >> columns, as here): about 10 steps to a
    gradient below LOGISTIC_TOL where lbfgs took hundreds of cheaper ones and stopped short
    (tests/models/test_logistic_solver.py: the coefficients agree with a tight lbfgs fit).

    `max_rows`: above that many rows it is fitted on a seeded sample of them
    (`logistic_rows_sample`): its ~100 coefficients are pinned by a few hundred thousand rows,
    while its cost and memory (the dense transformed matrix) grow with every row
    (docs/performance.md, "Scale rules")."""
    sample = logistic_rows_sample(len(train_x), max_rows, seed)
    if sample is not None:
        train_x, train_y = train_x.iloc[sample], train_y.iloc[sample]
    prepare = ColumnTransformer(
        [
            (_step(position), _column_steps(name in categorical), [name])
            for position, name in enumerate(train_x.columns)
        ]
    )
    model = Pipeline(
        [
            ("prepare", prepare),
            (
                "fit",
                LogisticRegression(
                    solver="newton-cholesky",
                    tol=LOGISTIC_TOL,
                    max_iter=LOGISTIC_MAX_ITER,
                    random_state=seed,
                ),
            ),
        ]
    )
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
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
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        return np.asarray(model.predict_proba(_as_objects(features, categorical))[:, 1])


def logistic_logit(model: Pipeline, features: pd.DataFrame, categorical: list[str]) -> np.ndarray:
    """The fitted logistic regression's log-odds per row of `features` (its training columns)."""
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        logit = model.decision_function(_as_objects(features, categorical))
    return np.asarray(logit, dtype=float)


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
    # scikit-learn's imputers want object columns with NaN, not pandas categoricals. Only those
    # columns are rebuilt: the numeric ones (NaN already) are shared, not copied (3 M rows ×
    # 68 features: 1.6 GB per copy).
    objects = {
        c: features[c].astype(object).where(features[c].notna(), np.nan) for c in categorical
    }
    return features.assign(**objects)
