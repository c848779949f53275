"""The `history` job: a deal's p_close, tier and rank over time (from the score table, or the
logged queues when there is none), and between two scorings which features moved its score most."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pandas as pd

from closeprob.pipeline.config import Config, named_columns
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.errors import CloseprobError
from closeprob.pipeline.history import HISTORY_COLUMNS, contributions_at, describe_changes
from closeprob.pipeline.io import read_table
from closeprob.pipeline.partitions import partitions_folder, read_partitions
from closeprob.pipeline.registry import load_registered_model
from closeprob.pipeline.sales_reasons import sales_phrases
from closeprob.pipeline.scores_db import read_scores, resolve_scores_url
from closeprob.pipeline.store import tracking_uri

log = logging.getLogger(__name__)


def run_history(config: Config, deal_id: str, to: str | None) -> None:
    """`closeprob history DEAL_ID`: p_close, tier and rank at each scoring, then what moved
    the score between consecutive scorings."""

    target = resolve_scores_url(to or config.predict.to, config.predict.out)
    scores = read_scores(target, deal_id) if target is not None else pd.DataFrame()
    source = f"table deal_scores in {target.shown}" if target is not None else ""
    if scores.empty:
        scores = partition_history(config.predict.out, deal_id)
        source = f"the day partitions in {partitions_folder(config.predict.out)}"
    if scores.empty:
        scores = logged_history(config.prediction_experiment, deal_id)
        source = f"the queues logged to MLflow experiment {config.prediction_experiment!r}"
    if scores.empty:
        raise CloseprobError(
            f"deal_id {deal_id!r}: never scored (no row in {source or 'a score table'}, none in "
            f"the queues logged to {config.prediction_experiment!r}); check the id, or run "
            "`closeprob predict` first"
        )
    scores = history_rows(scores)
    log.info(f"deal {deal_id}: {len(scores)} scorings, from {source}\n")
    money = {"p_close": "{:.3f}".format, "expected_value": "{:,.0f}".format}
    log.info(scores.to_string(index=False, formatters=money))
    if len(scores) > 1:
        print_changes(config, deal_id, scores)


def history_rows(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per scoring, oldest first: the latest write of each as_of day."""
    rows = scores.assign(
        as_of=pd.to_datetime(scores["as_of"], utc=True, format="ISO8601"),
        **{c: pd.to_numeric(scores[c]) for c in ("p_close", "expected_value", "rank")},
        model_version=scores["model_version"].astype(str),
    )
    rows = rows.sort_values("as_of", kind="stable")
    day = rows["as_of"].dt.strftime("%Y-%m-%d")
    return rows.assign(_day=day).drop_duplicates("_day", keep="last")[HISTORY_COLUMNS]


def print_changes(config: Config, deal_id: str, scores: pd.DataFrame) -> None:
    """Between each two scorings, the features whose contributions moved most (the current
    champion's view of the deal's data at both dates)."""

    dataset = load_dataset(config.data, named_columns(config), purpose="predict")
    model = load_registered_model(config.model_uri).close
    described = sales_phrases(model.spec)
    ids = pd.Series([deal_id])
    log.info(f"\nWhy it changed (contributions of {config.model_uri} at each date):")
    dates = list(scores["as_of"])
    for before_at, now_at in itertools.pairwise(dates):
        before, values_before = contributions_at(dataset, model, ids, before_at)
        now, values_now = contributions_at(dataset, model, ids, now_at)
        text = describe_changes(before, now, values_before, values_now, described, top=3)[0]
        log.info(f"  {before_at.date()} → {now_at.date()}: {text or 'nothing moved'}")


def partition_history(out: Path, deal_id: str) -> pd.DataFrame:
    """The deal's rows in every day partition of the queue `out` (full precision)."""
    rows = [queue[queue["deal_id"].astype(str) == deal_id] for queue in read_partitions(out)]
    rows = [found for found in rows if not found.empty]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def logged_history(experiment: str, deal_id: str) -> pd.DataFrame:
    """The deal's rows in every queue the FINISHED predict runs of `experiment` logged."""
    import tempfile

    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return pd.DataFrame()
    runs = client.search_runs([found.experiment_id], "attributes.status = 'FINISHED'")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for run in runs:
            name = Path(run.data.params.get("queue_path", "")).name
            if not name:
                continue
            path = mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path=name, dst_path=folder
            )
            queue = read_table(Path(path))
            rows.append(queue[queue["deal_id"].astype(str) == deal_id])
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
