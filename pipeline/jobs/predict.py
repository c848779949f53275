"""The `predict` job: load the model, score the deals open at as_of (locally or on Spark),
measure the batch's health, write the queue, its HTML report and the score table, log the run,
and end stdout with a one-line JSON summary."""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
from closeprob.pipeline.io import check_output_path, read_previous_queue
from closeprob.pipeline.jobs.generate import import_fresh_export
from closeprob.pipeline.lock import queue_lock
from closeprob.pipeline.partitions import (
    SUMMARY,
    StagedPartition,
    check_partitions_folder,
    previous_queue,
    report_name,
    staged_partition,
)
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
    the day's partition (the queue, its HTML report, the JSON summary; pipeline/partitions.py)
    and the score table, log the run with the batch's health (`--fail-on-drift`:
    DriftDetected once the queue is written, when it drifted).

    Before any work: the output may not be an input or a file other than a previous queue,
    the score database must answer, and the store must be usable (one that only serves the
    model is never created). One predict per queue at a time (the queue's lock). The
    partition is published (swapped into place) together with the score table's transaction
    and its FINISHED run, or not at all. The last line on stdout is the JSON summary.
    """

    uri = model_uri or config.model_uri
    path = out or config.predict.out
    data = config.data
    check_output_path(path, [p for p in (data.deals, data.interactions, data.truth) if p])
    check_partitions_folder(path)
    target = resolve_scores_url(to or config.predict.to, path)
    with queue_lock(path, config.predict.lock_wait_seconds):
        if target is not None:
            check_scores_database(target)  # a database that does not answer: before scoring
        read_previous_queue(path)  # a file at `path` that is not a queue: refused, before work
        import_fresh_export(config)
        batch = _score_and_publish(config, uri, path, engine, as_of_text, target)
    queue = batch.queue
    print_queue_summary(queue, tier_summary(queue), batch.staged_path, batch.run_id)
    report_health(batch.health, config.health, fail_on_drift=False)
    changes = change_summary(queue, batch.previous)
    if changes:
        log.info(f"\n{changes}")
    print(summary_line(batch.summary), flush=True)
    health = batch.health
    drift = drift_message(health, config.health.psi_warn) if health is not None else None
    if fail_on_drift and drift is not None:
        raise DriftDetected(drift)


@dataclass(frozen=True)
class Batch:
    """A published batch: the queue, the queue it was compared with, its health (None for a
    model without a health reference), where its queue was published and the run's JSON
    summary."""

    queue: pd.DataFrame
    previous: pd.DataFrame | None
    health: BatchHealth | None
    staged_path: Path
    run_id: str
    summary: dict[str, object]


def _score_and_publish(
    config: Config,
    uri: str,
    path: Path,
    engine: str | None,
    as_of_text: str | None,
    target: ScoresUrl | None,
) -> Batch:
    """Score locally or on Spark, comparing with the previous day's partition, then publish
    the day's partition (and the score table)."""

    create_store = not uri.startswith(("models:/", "runs:/"))
    seen: list[pd.DataFrame | None] = []

    def previous_for(as_of: pd.Timestamp) -> pd.DataFrame | None:
        seen.append(previous_queue(path, as_of))
        return seen[-1]

    if (engine or config.predict.engine) == "spark":
        from closeprob.pipeline.spark.queue import build_spark_queue

        def load_model() -> LoadedModel:
            check_store(create_store)
            return load_registered_model(uri)

        # Spark reads and validates the deals before the model is loaded, as below. The
        # interactions stay in Spark, so the run logs no dataset inputs.
        spark_batch = build_spark_queue(config, load_model, as_of_text, previous_for)
        queue, loaded, health = spark_batch.queue, spark_batch.loaded, spark_batch.health
        published = _publish_queue(queue, path, loaded, config, None, health, target)
        _warn_amount_outliers(spark_batch.deals, queue, config)
        return Batch(queue, seen[-1] if seen else None, health, *published)
    # The data first: a config or data error is reported before the tracking store is touched.
    dataset = load_job_data(config, "predict")
    check_store(create_store)
    loaded = load_registered_model(uri)
    queue, features = build_local_batch(dataset, config, loaded, as_of_text, previous_for)
    as_of = queue["as_of"].iloc[0]
    health = measure_health(dataset, loaded.close, features, queue, as_of, config.health)
    published = _publish_queue(queue, path, loaded, config, (dataset, config), health, target)
    _warn_amount_outliers(dataset.deals, queue, config)
    return Batch(queue, seen[-1] if seen else None, health, *published)


def _warn_amount_outliers(deals: pd.DataFrame, queue: pd.DataFrame, config: Config) -> None:
    """Warn of queued deals whose declared amount is far above their segment's (a unit or
    currency slip that would top the queue)."""
    outliers = amount_outliers(
        deals, config.value.segment, config.data.amount_outlier_multiple, among=queue["deal_id"]
    )
    if outliers:
        log.warning(f"{config.data.deals}: {outliers}")


def _publish_queue(
    queue: pd.DataFrame,
    path: Path,
    loaded: LoadedModel,
    config: Config,
    scored: tuple[Dataset, Config] | None,
    health: BatchHealth | None = None,
    target: ScoresUrl | None = None,
) -> tuple[Path, str, dict[str, object]]:
    """Write the day's partition (queue, report, full-precision copy, summary) to a temporary
    folder, log the queue and report, and swap the partition into place as the run's last
    step (store.tracked_run), right after the score table's transaction; where the queue
    went, the run's id and its JSON summary."""

    flags = health_flags(health) if health is not None else None  # models/health.py
    summaries: list[dict[str, object]] = []

    def write_report(temporary: Path) -> None:
        html = render_report(queue, list(config.predict.columns))
        temporary.write_text(html, encoding="utf-8")

    # People read the CSV: p_close and money rounded (Parquet and the table: full precision).
    shown = rounded_for_people(queue) if path.suffix.lower() == ".csv" else queue
    report = write_report if config.predict.html else None
    as_of = pd.Timestamp(queue["as_of"].iloc[0])
    with staged_partition(path, as_of, queue, shown, report) as staged:
        outputs = _outputs(staged, path, target, report is not None)

        def publish_first(run_id: str) -> None:
            summaries.append(run_summary(queue, outputs, run_id, flags))
            staged.write_summary(summaries[-1])
            if target is not None:
                now = pd.Timestamp.now(tz="UTC")
                rows = write_scores(target, queue, now, config.predict.columns)
                log.info(f"{rows:,} scores written to {target.shown} (table deal_scores)")

        also = (staged.file(report_name(path)),) if report else ()
        run_id = log_prediction_run(
            queue,
            staged,
            loaded.uri,
            loaded.version,
            config.prediction_experiment,
            scored,
            None if health is None else lambda: log_health(health, config.health.psi_warn),
            publish_first=publish_first,
            also=also,
        )
    return staged.path, run_id, summaries[-1]


def _outputs(
    staged: StagedPartition, path: Path, target: ScoresUrl | None, html: bool
) -> dict[str, str]:
    """What the summary lists: the day's queue, report and summary, the table, and the
    stable copies when this day is the latest."""
    outputs = {"queue": str(staged.path)}
    if html:
        outputs["report"] = str(staged.folder / report_name(path))
    outputs["summary"] = str(staged.folder / SUMMARY)
    if target is not None:
        outputs["scores"] = target.shown
    for copy in staged.latest:
        outputs["latest_report" if copy.path.suffix == ".html" else "latest_queue"] = str(copy.path)
    return outputs
