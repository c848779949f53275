"""The batch job scores a blended model through its raw score, in chunks, as `predict_proba`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.spec import FeatureSpec
from closeprob.models.baselines import fit_logistic
from closeprob.models.training import calibrate_booster, fit_fixed_trees
from closeprob.pipeline.scoring import score_features


def test_score_features_of_a_blend_equals_its_predict_proba_in_any_chunk_size() -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = pd.Series((rng.random(400) < 1 / (1 + np.exp(-2 * x["a"]))).astype(int))
    params = {"num_leaves": 3, "min_child_samples": 20, "num_threads": 1}
    booster = fit_fixed_trees(x[:300], y[:300], params, 20, seed=1)
    linear = fit_logistic(x[:300], y[:300], [], seed=1)
    model = calibrate_booster(
        booster, x[300:], y[300:], "sigmoid", FeatureSpec(()), {}, linear, 0.5
    )
    features = x.assign(
        deal_id=[f"D{i}" for i in range(400)], days_since_last_touch=1.0, deal_age_days=5.0
    )
    for chunk_rows in (7, 400):
        scored = score_features(features, model, chunk_rows)
        np.testing.assert_allclose(scored["p_close"], model.predict_proba(x), atol=1e-12)
