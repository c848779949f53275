"""fit_logistic's Newton solver fits the objective lbfgs fitted before (log loss plus an L2
penalty, C = 1, on the same prepared columns), only to a tighter optimum and in fewer steps:
its coefficients and probabilities agree with lbfgs run to a tight tolerance."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from closeprob.models.baselines import _as_objects, fit_logistic, predict_logistic
from closeprob.models.classifier import encode_features, fit_categories

NAMES = ["a", "b", "c", "kind"]


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Correlated numerics on different scales (one with gaps) and a categorical with a rare
    level: the conditioning that made lbfgs take hundreds of steps."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    c = 50.0 * (a + 0.1 * rng.normal(size=n))  # nearly collinear with a
    b = np.where(rng.random(n) < 0.2, np.nan, rng.exponential(3.0, size=n))
    kind = rng.choice(["x", "y", "z", "rare"], size=n, p=[0.4, 0.3, 0.28, 0.02])
    logit = 1.5 * a + 0.8 * (kind == "x") - 0.3 * np.nan_to_num(b) - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    features = pd.DataFrame({"a": a, "b": b, "c": c, "kind": pd.Series(kind, dtype=object)})
    return features, pd.Series(y)


def test_newton_fit_matches_a_tight_lbfgs_fit_of_the_same_objective() -> None:
    features, y = _frame(3000, 7)
    encoded = encode_features(features, NAMES, fit_categories(features, ["kind"]))
    model = fit_logistic(encoded, y, ["kind"], seed=1)
    prepared = model.named_steps["prepare"].transform(_as_objects(encoded, ["kind"]))
    tight = LogisticRegression(solver="lbfgs", tol=1e-12, max_iter=100_000).fit(prepared, y)
    fitted = model.named_steps["fit"]
    assert fitted.solver == "newton-cholesky" and fitted.C == tight.C == 1.0
    np.testing.assert_allclose(fitted.coef_, tight.coef_, atol=1e-5)
    np.testing.assert_allclose(fitted.intercept_, tight.intercept_, atol=1e-5)
    p_tight = tight.predict_proba(prepared)[:, 1]
    np.testing.assert_allclose(predict_logistic(model, encoded, ["kind"]), p_tight, atol=1e-6)
