"""The `predict` job: load the model, score the deals open at as_of (locally or on Spark),
measure the batch's health, write the queue, its HTML report and the score table, log the run,
and end stdout with a one-line JSON summary."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from closeprob.models.health import BatchHealth, health_flags
from closeprob.pipeline.amounts import amount_outliers
from closeprob.pipeline.config import Config
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.dataset import load_job_data
from closeprob.pipeline.errors import DriftDetected
from closeprob.pipeline.health import drift_message, log_health, measure_health, report_health
from closeprob.pipeline.html_report import render_report
from closeprob.pipeline.io import check_output_path, read_previous_queue, staged_file, staged_table
from closeprob.pipeline.jobs.generate import import_fresh_export
from closeprob.pipeline.lock import queue_lock
from closeprob.pipeline.readable_queue import rounded_for_people
from closeprob.pipeline.registry import LoadedModel, load_registered_model
from closeprob.pipeline.report import print_queue_summary
from closeprob.pipeline.runs import log_prediction_run
from closeprob.pipeline.scores_db import (
    ScoresUrl,
    check_scores_database,
    resolve_scores_url,
    write_scores,
)
from closeprob.pipeline.scoring import build_local_batch, tier_summary
from closeprob.pipeline.store import check_store
from closeprob.pipeline.summary import change_summary, run_summary, summary_line

log = logging.getLogger(__name__)


def run_predict(
    config: Config,
    as_of_text: str | None,
    model_uri: str | None,
    out: Path | None,
    engine: str | None = None,
    fail_on_drift: bool = False,
    to: str | None = None,
) -> None:
    """The `predict` job: load the model, score the open deals (locally or on Spark), write
    the queue, its HTML report and the score table, log the run with the batch's health
    (`--fail-on-drift`: DriftDetected once the queue is written, when it drifted).

    Before any work: the output may not be an input or a file other than a previous queue,
    the score database must answer, and the store must be usable (one that only serves the
    model is never created). One predict per queue at a time (the queue's lock). The queue
    is published (renamed into place) together with the score table's transaction and its
    FINISHED run, or not at all. The last line on stdout is the JSON summary.
    """

    uri = model_uri or config.model_uri
    path = out or config.predict.out
    data = config.data
    check_output_path(path, [p for p in (data.deals, data.interactions, data.truth) if p])
    target = resolve_scores_url(to or config.predict.to, path)
    with queue_lock(path, config.predict.lock_wait_seconds):
        if target is not None:
            check_scores_database(target)  # a database that does not answer: before scoring
        import_fresh_export(config)
        previous = read_previous_queue(path)
        queue, run_id, health = _score_and_publish(
            config, uri, path, engine, as_of_text, previous, target
        )
    print_queue_summary(queue, tier_summary(queue), path, run_id)
    if health is None:
        log.info("health: not measured on the Spark engine (its features stay in Spark)")
    report_health(health, config.health, fail_on_drift=False)
    flags = health_flags(health) if health is not None else None  # models/health.py
    report_run(queue, previous, path, target, run_id, config.predict.html, flags)
    drift = drift_message(health, config.health.psi_warn) if health is not None else None
    if fail_on_drift and drift is not None:
        raise DriftDetected(drift)


def _score_and_publish(
    config: Config,
    uri: str,
    path: Path,
    engine: str | None,
    as_of_text: str | None,
    previous: pd.DataFrame | None,
    target: ScoresUrl | None,
) -> tuple[pd.DataFrame, str, BatchHealth | None]:
    """Score locally or on Spark, then publish the queue (and the score table); the queue,
    the MLflow run's id and the batch's health (None on Spark)."""

    create_store = not uri.startswith(("models:/", "runs:/"))
    if (engine or config.predict.engine) == "spark":
        from closeprob.pipeline.spark.queue import build_spark_queue

        def load_model() -> LoadedModel:
            check_store(create_store)
            return load_registered_model(uri)

        # Spark reads and validates the deals before the model is loaded, as below. The
        # interactions stay in Spark, so the run logs no dataset inputs.
        queue, loaded = build_spark_queue(config, load_model, as_of_text, previous)
        return queue, _publish_queue(queue, path, loaded, config, None, None, target), None
    # The data first: a config or data error is reported before the tracking store is touched.
    dataset = load_job_data(config, "predict")
    check_store(create_store)
    loaded = load_registered_model(uri)
    queue, features = build_local_batch(dataset, config, loaded, as_of_text, previous)
    as_of = queue["as_of"].iloc[0]
    health = measure_health(dataset, loaded.close, features, queue, as_of, config.health)
    run_id = _publish_queue(queue, path, loaded, config, (dataset, config), health, target)
    outliers = amount_outliers(
        dataset.deals,
        config.value.segment,
        config.data.amount_outlier_multiple,
        among=queue["deal_id"],
    )
    if outliers:
        log.warning(f"{config.data.deals}: {outliers}")
    return queue, run_id, health


def report_run(
    queue: pd.DataFrame,
    previous: pd.DataFrame | None,
    path: Path,
    target: ScoresUrl | None,
    run_id: str,
    html: bool,
    flags: dict[str, object] | None = None,
) -> None:
    """The change summary, then the one-line JSON summary as the last line on stdout."""

    changes = change_summary(queue, previous)
    if changes:
        log.info(f"\n{changes}")
    outputs = {"queue": str(path)} | ({"scores": target.shown} if target else {})
    if html and report_path(path).exists():
        outputs["report"] = str(report_path(path))
    print(summary_line(run_summary(queue, outputs, run_id, flags)), flush=True)


def _publish_queue(
    queue: pd.DataFrame,
    path: Path,
    loaded: LoadedModel,
    config: Config,
    scored: tuple[Dataset, Config] | None,
    health: BatchHealth | None = None,
    target: ScoresUrl | None = None,
) -> str:
    """Write the queue (and its HTML report) beside `path`, log them, and rename them into
    place as the run's last step (store.tracked_run), right after the score table's
    transaction; the run's id."""

    def write_table() -> None:
        if target is not None:
            now = pd.Timestamp.now(tz="UTC")
            rows = write_scores(target, queue, now, config.predict.columns)
            log.info(f"{rows:,} scores written to {target.shown} (table deal_scores)")

    def write_report(temporary: Path) -> None:
        html = render_report(queue, list(config.predict.columns))
        temporary.write_text(html, encoding="utf-8")

    report = report_path(path) if config.predict.html else None
    # People read the CSV: p_close and money rounded (Parquet and the table: full precision).
    shown = rounded_for_people(queue) if path.suffix.lower() == ".csv" else queue
    with staged_table(shown, path) as staged, ExitStack() as stack:
        also = (stack.enter_context(staged_file(report, write_report)),) if report else ()
        return log_prediction_run(
            queue,
            staged,
            loaded.uri,
            loaded.version,
            config.prediction_experiment,
            scored,
            None if health is None else lambda: log_health(health, config.health.psi_warn),
            publish_first=write_table,
            also=also,
        )


def report_path(queue_path: Path) -> Path:
    """The HTML report beside the queue: queue.csv -> queue.html."""
    return queue_path.with_suffix(".html")
