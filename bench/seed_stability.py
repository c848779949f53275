"""How stable are the headline figures across generator seeds? Prints one line per seed.

    .venv/bin/python bench/seed_stability.py 42 1 2 3 4

Each seed draws a different synthetic CRM (default size) and trains with the default config;
nothing is logged to MLflow. The oracle's ECE is the noise floor of ECE on that test slice:
the true probabilities are calibrated by construction.
"""

from __future__ import annotations

import sys
import warnings

from closeprob.models.metrics import classification_metrics
from closeprob.pipeline.config import parse_config
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.evaluation import oracle_metrics
from closeprob.pipeline.oracle import oracle_close_probability
from closeprob.pipeline.synthetic import generate_crm
from closeprob.pipeline.training import train_close_model


def main(seeds: list[int]) -> None:
    warnings.simplefilter("ignore")
    base = parse_config(
        {"data": {"attributes": ["industry", "company_size", "source", "region", "product"]}}
    )
    print("seed  roc_auc  oracle  gap     ece    ece_uncal  ece_oracle  log_loss")
    for seed in seeds:
        config = parse_config(base.model_dump(mode="json") | {"seed": seed})
        g = config.generate
        crm = generate_crm(g.n_deals, g.n_interactions, g.start, g.days, seed)
        dataset = Dataset(crm.deals, crm.interactions, crm.truth)
        result = train_close_model(dataset, config)
        test = result.data.rows("test")
        keys = result.data.features.loc[test, ["deal_id", "as_of"]]
        oracle = oracle_close_probability(crm.truth, keys, crm.deals, config.snapshots.horizon_days)
        oracle_ece = classification_metrics(result.data.labels[test], oracle.to_numpy())["ece"]
        m = result.metrics | oracle_metrics(result.data, dataset, config)
        print(
            f"{seed:<6}{m['test_roc_auc']:.4f}   {m['test_oracle_roc_auc']:.4f}  "
            f"{m['test_oracle_roc_auc'] - m['test_roc_auc']:.4f}  {m['test_ece']:.4f}  "
            f"{m['test_uncalibrated_ece']:.4f}     {oracle_ece:.4f}      {m['test_log_loss']:.4f}"
        )


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [42])
