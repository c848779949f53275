"""The training and scoring stages one after another in one process, each timed and metered.

    .venv/bin/python bench/stages.py --config CONFIG --out stages.json

Reads the data named by CONFIG (a closeprob config) and runs what `make train` and
`make predict` run, stage by stage, without MLflow: validate, snapshot features (dates, open
deals, features, labels, split), train (LightGBM with early stopping), calibrate, value model,
score (features, p_close and reason codes for every deal open at the end of the data) and rank
(values, expected value, tiers). For each stage it writes wall seconds and the process's peak
RSS during the stage: the kernel's high-water mark (VmHWM) is reset before each stage through
/proc/self/clear_refs, so a stage's peak includes what earlier stages still hold (the data) and
not their own peaks. `bench/run.py` calls it in a child process.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from score_throughput import status_mib  # bench/: this script's folder is on sys.path

from closeprob.models.training import tree_count
from closeprob.pipeline.config import load_config
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.registry import LoadedModel
from closeprob.pipeline.scoring import (
    default_as_of,
    explain_features,
    open_snapshots,
    rank_queue,
    reason_rows,
    score_features,
    snapshot_features,
    with_reasons,
)
from closeprob.pipeline.training import (
    fit_deal_value_model,
    fit_deployed,
    fit_evaluated,
    prepare_training_data,
)


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="utf-8")
    except OSError:
        return False
    return True


class Meter:
    """Collects one record per stage: seconds, peak RSS during it, and facts about it."""

    def __init__(self) -> None:
        self.stages: list[dict[str, object]] = []
        self.peak_resets = True

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, object]]:
        self.peak_resets &= reset_peak()
        facts: dict[str, object] = {}
        started = time.perf_counter()
        yield facts
        seconds = time.perf_counter() - started
        self.stages.append(
            {"stage": name, "seconds": seconds, "peak_rss_mib": status_mib("VmHWM"), **facts}
        )


def run_stages(config_path: Path) -> dict[str, object]:
    """Every stage on the config's data; returns the records and the process's totals."""
    config = load_config(config_path)
    meter = Meter()
    with meter.stage("validate") as facts:
        dataset = load_dataset(config.data)
        facts["rows"] = len(dataset.interactions)
    with meter.stage("snapshot features") as facts:
        data = prepare_training_data(dataset, config)
        facts["rows"] = len(data.features)
        facts["columns"] = len(data.features.columns) - 2
    with meter.stage("train + calibrate (evaluated)") as facts:
        evaluated = fit_evaluated(data, config)
        facts["rows"] = int(data.rows("train").sum())
        facts["trees"] = tree_count(evaluated.booster)
    with meter.stage("train + calibrate (deployed)") as facts:
        model = fit_deployed(data, config, blend_weight=evaluated.blend_weight)
        facts["rows"] = int(data.role("fit").sum())
        facts["trees"] = tree_count(model.booster)
    with meter.stage("value model") as facts:
        value_model = fit_deal_value_model(dataset.deals, data, config)
        facts["rows"] = len(dataset.deals)
    loaded = LoadedModel(close=model, value=value_model, uri="in-process", version="bench")
    as_of = default_as_of(dataset)
    with meter.stage("score") as facts:
        features = snapshot_features(dataset, model, open_snapshots(dataset.deals, as_of))
        scored = score_features(features, model, config.predict.chunk_rows)
        facts["rows"] = len(scored)
    with meter.stage("rank") as facts:
        queue = rank_queue(scored, dataset, loaded, as_of, config.ranking, None)
        facts["rows"] = len(queue)
    with meter.stage("reasons") as facts:
        read = reason_rows(queue, config.ranking)
        rows = features.set_index("deal_id").index.get_indexer(queue.loc[read, "deal_id"])
        explained = explain_features(
            features.iloc[rows], model, config.ranking.reasons, config.predict.chunk_rows
        )
        queue = with_reasons(queue, read, explained)
        facts["rows"] = int(read.sum())
    return {
        "stages": meter.stages,
        "peak_resets": meter.peak_resets,
        "process_peak_rss_mib": status_mib("VmHWM") if not meter.peak_resets else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    result = run_stages(args.config)
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
