"""Where runs are logged: experiments, and one function per kind of run (train, evaluate,
predict, backtest, results). Callers hand over what to log (metrics, figures, tables); nothing
here trains, scores or draws. The model registry is in `registry.py`; the tracking store (its
checks, one-line errors, and runs that end with what they publish) in `store.py`.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from closeprob.models.base_rate import recent_won_rate
from closeprob.models.ranker import TIERS
from closeprob.models.recent_calibration import calibration_record
from closeprob.models.yardsticks import base_rate_gap
from closeprob.pipeline.config import Config, flatten_config
from closeprob.pipeline.core import ROLES, SLICES, Dataset, Evaluation, TrainingResult
from closeprob.pipeline.io import Staged
from closeprob.pipeline.store import prepare_store, sqlite_path, tracked_run
from closeprob.pipeline.store import tracking_uri as tracking_uri  # where callers look

EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"


def use_experiment(name: str) -> None:
    """Track into experiment `name` at the configured URI, tagged as a model-training
    experiment (`mlflow.experimentKind`), the tag MLflow 3's UI uses to tell training
    experiments from GenAI ones."""
    prepare_store()
    experiment = mlflow.set_experiment(experiment_id=_experiment_id(name))
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING_KIND:
        MlflowClient().set_experiment_tag(
            experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND
        )


def _experiment_id(name: str) -> str:
    """The experiment's id, creating it if needed. On a SQLite store its artifacts go beside
    the database (`<db folder>/mlruns/<name>`), not into the current directory, which is
    MLflow's default: a store named by an absolute path keeps its files together wherever a
    job runs from."""
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    database = sqlite_path(tracking_uri())
    location = None
    if database is not None:
        folder = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        location = (database.resolve().parent / "mlruns" / folder).as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:  # created by another job meanwhile
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


def git_commit(root: Path = Path(".")) -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def data_fingerprint(dataset: Dataset) -> dict[str, str]:
    """Row counts, time span and a content hash of both tables."""
    digest = hashlib.sha256()
    for frame in (dataset.deals, dataset.interactions):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    times = pd.concat(
        [
            dataset.deals["created_at"],
            dataset.interactions["occurred_at"],
            dataset.deals["closed_at"],
        ]
    )
    return {
        "data.deals_rows": str(len(dataset.deals)),
        "data.interactions_rows": str(len(dataset.interactions)),
        "data.open_deals": str(int(dataset.deals["closed_at"].isna().sum())),
        "data.first_at": str(times.min()),
        "data.last_at": str(times.max()),
        "data.sha256": digest.hexdigest()[:16],
    }


def split_summary(result: TrainingResult) -> dict[str, str]:
    """Rows, positive rate and first/last snapshot date of each slice."""
    summary: dict[str, str] = {}
    for name in SLICES:
        dates = getattr(result.data.split, name)
        rows = result.data.rows(name)
        summary[f"split.{name}_rows"] = str(int(rows.sum()))
        summary[f"split.{name}_positive_rate"] = f"{result.data.labels[rows].mean():.4f}"
        summary[f"split.{name}_from"] = str(dates[0].date())
        summary[f"split.{name}_to"] = str(dates[-1].date())
    for name in ROLES:
        rows = result.data.role(name)
        summary[f"deployed.{name}_rows"] = str(int(rows.sum()))
        summary[f"deployed.{name}_positive_rate"] = f"{result.data.labels[rows].mean():.4f}"
    return summary


def log_training_run(
    result: TrainingResult,
    dataset: Dataset,
    config: Config,
    evaluation: Evaluation,
    artifacts: TrainingArtifacts,
    fingerprint: dict[str, str],
    log_extra: Callable[[], None],
    publish: Callable[[], None],
) -> str:
    """One MLflow run with params, metrics, artifacts and the model; its run id.

    `log_extra` logs the model and the champion comparison into the run (registry.py);
    `publish` registers the version and moves the aliases, last, with signals held (see
    `tracked_run`): a run that fails or is stopped anywhere leaves the registry as it was and
    ends FAILED (the error in its `error` tag) or KILLED.
    """
    use_experiment(config.experiment)
    with tracked_run(run_name("train", config.name, fingerprint), publish) as run_id:
        _log_common(config, dataset, result, "lightgbm_calibrated", fingerprint)
        log_data_inputs(dataset, config, fingerprint["data.sha256"], "training")
        mlflow.set_tags(
            {"trained_through": result.trained_through, "calibrated_on": result.calibrated_on}
        )
        mlflow.log_metrics(result.metrics | evaluation.metrics)
        kind = "model" if result.value_model.regressor else "segment_median"
        mlflow.log_param("value.model_kind", kind)
        _log_calibration_choice(result)
        mlflow.log_table(artifacts.features, "features.json")
        mlflow.log_text(artifacts.features_text, "features.txt")
        if result.model.reference is not None:  # also inside the model; here to read it
            mlflow.log_dict(result.model.reference, "health_reference.json")
        _log_figures(artifacts.figures)
        _log_evaluation(evaluation, skip={"reliability.png"})
        log_extra()
    return run_id


def _log_calibration_choice(result: TrainingResult) -> None:
    """Which Platt slope each model uses (pooled or recent) with both slopes and the recent
    window's interval, as params and metrics the runs' compare view lines up."""
    for role, model in (("evaluated", result.evaluated), ("deployed", result.model)):
        params, metrics = calibration_record(model.calibrator, model.slope_choice, role)
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)


def version_notes(
    result: TrainingResult, data: dict[str, str], config: Config
) -> tuple[str, dict[str, str]]:
    """A registered version's description and tags: which data (name, span, rows: `data`, the
    `data_fingerprint`) and how well it did on the test slice."""
    first, last = data["data.first_at"][:10], data["data.last_at"][:10]
    roc_auc, ece = result.metrics["test_roc_auc"], result.metrics["test_ece"]
    description = (
        f"Trained on '{config.name}' ({config.data.deals}): {int(data['data.deals_rows']):,} "
        f"deals and {int(data['data.interactions_rows']):,} interactions, {first} to {last}. "
        f"Test ROC-AUC {roc_auc:.3f}, ECE {ece:.3f}. Deployed model: trained through "
        f"{result.trained_through}, calibrated on {result.calibrated_on}."
    )
    tags = {
        "data.name": config.name,
        "data.deals": str(config.data.deals),
        "data.first_at": first,
        "data.last_at": last,
        "data.deals_rows": data["data.deals_rows"],
        "data.interactions_rows": data["data.interactions_rows"],
        "data.sha256": data["data.sha256"],
        "test_roc_auc": f"{roc_auc:.4f}",
        "test_ece": f"{ece:.4f}",
        "blend_weight": f"{result.metrics['blend_weight']:.2f}",
    }
    return description, tags


@dataclass(frozen=True)
class TrainingArtifacts:
    """What a training run shows besides metrics: the feature table (name, description,
    gain), the same as text, and figures by PNG name."""

    features: pd.DataFrame
    features_text: str
    figures: dict[str, Figure]


def _log_figures(figures: dict[str, Figure]) -> None:
    for name, figure in figures.items():
        mlflow.log_figure(figure, name)
        plt.close(figure)


def log_family_run(
    evaluation: Evaluation, result: TrainingResult, dataset: Dataset, config: Config
) -> str:
    """One run per evaluated policy (model or baseline), tagged with its `model_family`, so the
    MLflow UI's compare view lines them up on the same split and metrics."""
    use_experiment(config.experiment)
    with tracked_run(f"evaluate-{evaluation.family}") as run_id:
        _log_common(config, dataset, result, evaluation.family)
        mlflow.set_tag("job", "evaluate")
        mlflow.log_metrics(evaluation.metrics)
        _log_evaluation(evaluation, skip=set())
    return run_id


def run_name(job: str, name: str, fingerprint: dict[str, str]) -> str:
    """What and on which data, as the runs list shows it: 'train acme 2024-12-30'."""
    return f"{job} {name} {fingerprint['data.last_at'][:10]}"


SCHEMA_ROWS = 10_000


def log_data_inputs(dataset: Dataset, config: Config, digest: str, context: str) -> None:
    """Both tables as the run's dataset inputs (the MLflow UI's Dataset column), named for the
    data and identified by the content hash already computed (MLflow's own digest would visit
    every cell in Python)."""
    tables = (
        ("deals", dataset.deals, config.data.deals),
        ("interactions", dataset.interactions, config.data.interactions),
    )
    for table, frame, path in tables:
        with warnings.catch_warnings():
            # MLflow registers its local-file source twice (schemes '' and 'file') and warns
            # that a path matches both; either is the same class.
            warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
            data = from_pandas(
                frame, source=str(path), name=f"{config.name} {table}", digest=digest
            )
        # The column types from the first rows: MLflow's own inference visits every cell in
        # Python (29 s for 1 M interactions, about 5 minutes for 10 M); the profile (row count)
        # stays the whole table's.
        data.__dict__["schema"] = infer_signature(frame.head(SCHEMA_ROWS)).inputs
        mlflow.log_input(data, context=context)


def _log_common(
    config: Config,
    dataset: Dataset,
    result: TrainingResult,
    family: str,
    fingerprint: dict[str, str] | None = None,
) -> None:
    commit = git_commit()
    mlflow.set_tags(
        {"mlflow.source.git.commit": commit, "git_commit": commit, "model_family": family}
    )
    fingerprint = fingerprint or data_fingerprint(dataset)
    mlflow.log_params(flatten_config(config) | fingerprint | split_summary(result))
    mlflow.log_dict(config.model_dump(mode="json"), "config.yaml")


def _log_evaluation(evaluation: Evaluation, skip: set[str]) -> None:
    _log_figures({k: f for k, f in evaluation.figures.items() if k not in skip})
    for name in skip & evaluation.figures.keys():
        plt.close(evaluation.figures[name])
    if evaluation.segments is not None:
        mlflow.log_table(evaluation.segments, "segment_metrics.json")


def base_rate_metrics(
    p_close: np.ndarray, dataset: Dataset, config: Config, as_of: pd.Timestamp
) -> dict[str, float]:
    """The base-rate check of a queue: the won rate of deals open at the last dates whose
    horizon ended before `as_of`, and the queue's mean p_close minus it (none without such
    dates)."""
    rate, rows = recent_won_rate(
        dataset.deals,
        pd.Timestamp(as_of),
        config.snapshots.horizon_days,
        config.snapshots.every_days,
    )
    if rows == 0:
        return {}
    return {"recent_won_rate": rate, "base_rate_gap": base_rate_gap(p_close, rate)}


def log_prediction_run(
    queue: pd.DataFrame,
    staged: Staged,
    model_uri: str,
    model_version: str,
    experiment: str,
    scored: tuple[Dataset, Config] | None = None,
    log_extra: Callable[[], None] | None = None,
    publish_first: Callable[[str], None] | None = None,
    also: tuple[Path, ...] = (),
) -> str:
    """One run per batch job: model, as_of, rows scored, score distribution, tiers, the queue;
    with `scored`, the data scored as the run's dataset inputs and its name in the run name;
    `log_extra` logs more into the run (the batch's health) before it publishes.

    The artifact is the queue this run wrote (`staged`, before its publication), and the
    publication (`staged.publish`, a rename) is the run's: the queue at `staged.path` and a
    FINISHED run go together. `publish_first(run_id)` (the score table's transaction) runs
    just before it, signals held; if it fails, nothing is published and the run ends FAILED.
    `also`: more staged files (the HTML report) logged as artifacts; `staged` publishes them.
    """
    use_experiment(experiment)
    p_close = queue["p_close"].to_numpy()
    as_of = str(queue["as_of"].iloc[0])
    name = f"predict {scored[1].name} {as_of[:10]}" if scored else "predict"
    ids: list[str] = []

    def publish() -> None:
        if publish_first is not None:
            publish_first(ids[0])
        staged.publish()

    with tracked_run(name, publish) as run_id:
        ids.append(run_id)
        mlflow.set_tags({"git_commit": git_commit(), "job": "predict"})
        if scored is not None:
            dataset, config = scored
            log_data_inputs(dataset, config, data_fingerprint(dataset)["data.sha256"], "scoring")
        mlflow.log_params(
            {
                "model_uri": model_uri,
                "model_version": model_version,
                "as_of": as_of,
                "queue_path": str(staged.path),
            }
        )
        metrics = {
            "rows_scored": float(len(queue)),
            "p_close_mean": float(p_close.mean()),
            **{f"p_close_p{q}": float(np.percentile(p_close, q)) for q in (10, 50, 90)},
            "expected_value_total": float(queue["expected_value"].sum()),
        }
        if scored is not None:
            metrics |= base_rate_metrics(p_close, scored[0], scored[1], queue["as_of"].iloc[0])
        for tier in TIERS:
            in_tier = queue["tier"] == tier
            metrics[f"tier_{tier}_deals"] = float(in_tier.sum())
            metrics[f"tier_{tier}_expected_value"] = float(
                queue.loc[in_tier, "expected_value"].sum()
            )
        mlflow.log_metrics(metrics)
        if log_extra is not None:
            log_extra()
        with tempfile.TemporaryDirectory() as folder:
            mlflow.log_artifact(str(staged.copy_named(Path(folder))))
        for path in also:
            mlflow.log_artifact(str(path))
    return run_id


def log_backtest_run(
    weeks: pd.DataFrame,
    columns: list[str],
    pooled: dict[str, float],
    figure: Figure,
    config: Config,
    retrain_every: int,
) -> str:
    """One run: per-week metrics `columns` (step = week), their means, the pooled calibration
    (`pooled_*`), the table and the chart."""
    use_experiment(config.experiment)
    with tracked_run("backtest") as run_id:
        mlflow.set_tags({"git_commit": git_commit(), "job": "backtest", "model_family": "backtest"})
        mlflow.log_params(
            {
                "weeks": len(weeks),
                "retrain_every_weeks": retrain_every,
                "capacity": config.evaluation.capacity,
            }
        )
        for step, row in enumerate(weeks.itertuples(index=False)):
            values = {c: float(getattr(row, c)) for c in columns if pd.notna(getattr(row, c))}
            mlflow.log_metrics({f"week_{c}": v for c, v in values.items()}, step=step)
        mlflow.log_metrics(
            {f"mean_{c}": float(weeks[c].mean()) for c in columns if weeks[c].notna().any()}
        )
        mlflow.log_metrics({f"pooled_{k}": v for k, v in pooled.items() if not np.isnan(v)})
        mlflow.log_table(weeks.astype({"as_of": str}), "backtest_weeks.json")
        _log_figures({"backtest.png": figure})
    return run_id


def log_results_run(table: pd.DataFrame) -> str:
    """The results table as an artifact, and each data set's headline figures as metrics."""
    use_experiment("closeprob-results")
    with tracked_run("results") as run_id:
        mlflow.set_tags({"git_commit": git_commit(), "job": "results"})
        mlflow.log_table(table, "results.json")
        mlflow.log_text(table.to_markdown(index=False, floatfmt=".3f"), "results.md")
        for row in table.to_dict("records"):
            name = str(row["data set"])
            for key in ("ROC-AUC", "PR-AUC", "log loss", "ECE", "value@cap model", "value@cap RFM"):
                value = float(row[key])
                if value == value:  # NaN is not logged
                    mlflow.log_metric(
                        f"{name}_{key.replace('@', '_at_').replace(' ', '_').lower()}", value
                    )
    return run_id
