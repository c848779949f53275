"""The `evaluate` job: the model (and with --baselines RFM, ABC by value, logistic) on the same
test slice, one MLflow run per policy."""

from __future__ import annotations

import logging

from closeprob.pipeline.account_values import value_source_summary
from closeprob.pipeline.config import Config
from closeprob.pipeline.dataset import load_job_data
from closeprob.pipeline.evaluation import evaluate_policies, model_policies, policy_scores
from closeprob.pipeline.report import comparison_table, print_comparison
from closeprob.pipeline.runs import log_family_run
from closeprob.pipeline.training import train_close_model

log = logging.getLogger(__name__)


def run_evaluate(config: Config, baselines: bool) -> None:
    """The `evaluate` job: one MLflow run per policy (model, and with `baselines` RFM, ABC by
    value, logistic) on the same test slice."""

    dataset = load_job_data(config)
    result = train_close_model(dataset, config)
    policies = policy_scores(result, dataset, config) if baselines else model_policies(result)
    evaluations = evaluate_policies(result, dataset, config, policies)
    for evaluation in evaluations:
        log_family_run(evaluation, result, dataset, config)
    table = comparison_table({e.family: e.metrics for e in evaluations})
    print_comparison(table, config.evaluation.capacity, int(result.data.rows("test").sum()))
    by_source = value_source_summary(evaluations[0].metrics, config.evaluation.capacity)
    if by_source is not None:
        log.info(by_source)
    log.info(
        f"\nlogged {len(evaluations)} runs to experiment '{config.experiment}' (tag model_family)"
    )
