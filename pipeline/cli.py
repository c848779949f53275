"""`python -m pipeline <command>`: the one entry point of every job.

Commands: generate, import, train, evaluate, backtest, results, promote, predict. Errors a user
can fix print `error: …` and exit with code 2; nothing is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from pipeline.config import Config, load_config, with_data_paths
from pipeline.errors import CloseprobError

DEFAULT_CONFIG = Path("configs/default.yaml")


def _command(
    commands: argparse._SubParsersAction, name: str, text: str, data: bool = False
) -> argparse.ArgumentParser:
    """A subcommand with --config and, for those that read the data, --deals/--interactions."""
    command: argparse.ArgumentParser = commands.add_parser(name, help=text)
    command.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    if data:
        command.add_argument(
            "--deals", type=Path, default=None, help="deals table (.csv or .parquet)"
        )
        command.add_argument("--interactions", type=Path, default=None, help="interactions table")
    return command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    generate = _command(commands, "generate", "write the built-in synthetic CRM to data/")
    generate.add_argument(
        "--out", type=Path, default=None, help="folder (default: the config's data paths)"
    )
    _command(commands, "train", "train, evaluate, log and register a model", data=True)
    evaluate = _command(
        commands, "evaluate", "test-slice metrics, with --baselines side by side", data=True
    )
    evaluate.add_argument(
        "--baselines", action="store_true", help="also RFM, ABC by value, logistic"
    )
    results = _command(commands, "results", "one row per data set: the README's results table")
    results.add_argument("--datasets", default=None, help="comma-separated (default: all)")
    imports = _command(commands, "import", "map a public data set onto the data contract")
    imports.add_argument("name", help="bpi2012 | olist | crm_sales | bank_marketing")
    imports.add_argument(
        "--source", type=Path, default=None, help="raw files (default: ../shared/data/…)"
    )
    imports.add_argument("--out", type=Path, default=None, help="folder (default: data/<name>/)")
    backtest = _command(
        commands, "backtest", "weekly queues of the past, scored against what happened", data=True
    )
    backtest.add_argument("--weeks", type=int, default=8, help="how many past weekly as_of dates")
    backtest.add_argument(
        "--retrain-every", type=int, default=None, help="retrain every N weeks (default: config)"
    )
    promote = _command(commands, "promote", "set the champion alias by hand")
    which = promote.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", help="registry version to make champion")
    which.add_argument("--rollback", action="store_true", help="back to the previous champion")
    predict = _command(commands, "predict", "score open deals into the priority queue", data=True)
    predict.add_argument(
        "--as-of", default=None, help="score as of this instant (default: end of data)"
    )
    predict.add_argument("--model", default=None, help="MLflow model URI (default: the config's)")
    predict.add_argument("--out", type=Path, default=None, help="queue file, .csv or .parquet")
    return parser


def run_generate(config: Config, out: Path | None) -> None:
    from pipeline.io import write_table
    from pipeline.synthetic import generate_crm

    settings = config.generate
    crm = generate_crm(
        settings.n_deals, settings.n_interactions, settings.start, settings.days, config.seed
    )
    folder = out
    targets = {
        "deals": folder / "deals.csv" if folder else config.data.deals,
        "interactions": folder / "interactions.csv" if folder else config.data.interactions,
        "truth": folder / "truth.csv" if folder else (config.data.truth or Path("data/truth.csv")),
    }
    write_table(crm.deals, targets["deals"])
    write_table(crm.interactions, targets["interactions"])
    write_table(crm.truth, targets["truth"])
    still_open = int(crm.deals["closed_at"].isna().sum())
    print(
        f"generated {len(crm.deals):,} deals ({still_open:,} open at the end) "
        f"and {len(crm.interactions):,} interactions "
        f"from {settings.start} over {settings.days} days "
        f"(seed {config.seed}) -> {targets['deals']}, {targets['interactions']}, {targets['truth']}"
    )


def run_evaluate(config: Config, baselines: bool) -> None:
    from pipeline.dataset import load_dataset
    from pipeline.evaluate import evaluate_policies, model_policies, policy_scores
    from pipeline.report import comparison_table, print_comparison
    from pipeline.tracking import log_family_run
    from pipeline.train import train_close_model

    _ensure_data(config)
    dataset = load_dataset(config.data)
    result = train_close_model(dataset, config)
    policies = policy_scores(result, dataset, config) if baselines else model_policies(result)
    evaluations = evaluate_policies(result, dataset, config, policies)
    for evaluation in evaluations:
        log_family_run(evaluation, result, dataset, config)
    table = comparison_table({e.family: e.metrics for e in evaluations})
    print_comparison(table, config.evaluation.capacity, int(result.data.rows("test").sum()))
    print(
        f"\nlogged {len(evaluations)} runs to experiment '{config.experiment}' (tag model_family)"
    )


def run_backtest_command(config: Config, weeks: int, retrain_every: int) -> None:
    from pipeline.backtest import run_backtest
    from pipeline.dataset import load_dataset
    from pipeline.tracking import log_backtest_run

    _ensure_data(config)
    table = run_backtest(load_dataset(config.data), config, max(weeks, 1), max(retrain_every, 1))
    run_id = log_backtest_run(table, config, max(retrain_every, 1))
    print(
        f"\nBacktest, capacity {config.evaluation.capacity} deals per weekly queue "
        "(won value captured / perfect hindsight):\n"
    )
    print(table.to_string(index=False, float_format="{:.3f}".format))
    means = table.filter(like="captured_").mean()
    print(
        "\nmean: "
        + ", ".join(f"{str(k).removeprefix('captured_')} {v:.3f}" for k, v in means.items())
    )
    print(f"mean tier churn {table['tier_churn'].mean():.3f}; MLflow run {run_id}")


def run_promote(config: Config, version: str | None, rollback: bool) -> None:
    from pipeline.champion import promote_version, rollback_champion

    name = config.registered_model
    if rollback:
        current, previous = rollback_champion(name)
        print(f"{name}: champion rolled back from version {current} to {previous}")
    elif version is not None:
        before = promote_version(name, version)
        print(f"{name}: champion is now version {version} (was {before or 'none'})")


def run_results(names: str | None) -> None:
    from pipeline.dataset import load_dataset
    from pipeline.results import RESULT_DATASETS, dataset_result
    from pipeline.tracking import log_results_run

    rows = []
    for name in names.split(",") if names else RESULT_DATASETS:
        config = load_config(Path("configs") / f"{name}.yaml")
        _ensure_data(config)
        print(f"{name}: training and evaluating ...")
        rows.append(dataset_result(name, load_dataset(config.data), config))
    table = pd.DataFrame(rows)
    run_id = log_results_run(table)
    print()
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print(f"\nMLflow run {run_id} (experiment closeprob-results)")


def run_import(name: str, source: Path | None, out: Path | None) -> tuple[Path, Path]:
    from pipeline.adapters import run_adapter, source_folder
    from pipeline.io import write_table

    adapted = run_adapter(name, source or source_folder(name))
    folder = out or Path("data") / name
    deals_path, interactions_path = folder / "deals.parquet", folder / "interactions.parquet"
    write_table(adapted.deals, deals_path)
    write_table(adapted.interactions, interactions_path)
    print(
        f"imported {name}: {len(adapted.deals):,} deals, {len(adapted.interactions):,} "
        f"interactions -> {deals_path}, {interactions_path}"
    )
    for note in adapted.notes:
        print(f"  note: {note}")
    return deals_path, interactions_path


def _ensure_data(config: Config) -> None:
    """Generate the built-in CRM, or import the configured public data set, when missing."""
    if config.data.deals.exists():
        return
    if config.data.adapter is not None:
        print(f"{config.data.deals} not found: importing {config.data.adapter} first")
        run_import(config.data.adapter, None, config.data.deals.parent)
    elif config.data.truth is not None:
        print(f"{config.data.deals} not found: generating the built-in synthetic CRM first")
        run_generate(config, None)


def run_train(config: Config) -> None:
    from pipeline.champion import challenge_champion
    from pipeline.dataset import load_dataset
    from pipeline.evaluate import evaluate_policies, model_policies
    from pipeline.report import print_training_report
    from pipeline.tracking import alias_versions, log_training_run, tracking_uri
    from pipeline.train import train_close_model

    _ensure_data(config)
    started = time.perf_counter()
    dataset = load_dataset(config.data)
    result = train_close_model(dataset, config)
    (evaluation, _) = evaluate_policies(result, dataset, config, model_policies(result))
    run_id, model_version = log_training_run(result, dataset, config, evaluation)
    decision = challenge_champion(result, dataset, config, evaluation, run_id, model_version)
    aliases = sorted(
        (a for a, v in alias_versions(config.registered_model).items() if v == model_version),
        reverse=True,
    )
    seconds = time.perf_counter() - started
    print_training_report(result, run_id, model_version, aliases, config, tracking_uri(), seconds)
    verdict = "promoted to champion" if decision.promote else "not promoted"
    print(f"champion/challenger: version {model_version} {verdict}: {decision.reason}")


def run_predict(
    config: Config, as_of_text: str | None, model_uri: str | None, out: Path | None
) -> None:
    from pipeline.dataset import load_dataset
    from pipeline.io import read_previous_queue, write_table
    from pipeline.predict import (
        after_as_of,
        build_queue,
        check_model_matches,
        default_as_of,
        parse_as_of,
        tier_summary,
    )
    from pipeline.report import print_queue_summary
    from pipeline.tracking import load_registered_model, log_prediction_run

    uri = model_uri or config.predict.model_uri
    path = out or config.predict.out
    loaded = load_registered_model(uri)
    dataset = load_dataset(config.data)
    check_model_matches(loaded.close, dataset.deals, str(config.data.deals))
    as_of = parse_as_of(as_of_text) if as_of_text else default_as_of(dataset)
    later_events, later_deals = after_as_of(dataset, as_of)
    if later_events or later_deals:
        print(
            f"note: {later_events:,} interactions and {later_deals:,} deals dated at or after "
            f"as_of={as_of.isoformat()} are not used (features see only the past)"
        )
    queue = build_queue(
        dataset, loaded, as_of, config.ranking, config.predict.chunk_rows, read_previous_queue(path)
    )
    write_table(queue, path)
    run_id = log_prediction_run(queue, path, loaded, config.predict.experiment)
    print_queue_summary(queue, tier_summary(queue), path, run_id)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = with_data_paths(
            load_config(args.config),
            getattr(args, "deals", None),
            getattr(args, "interactions", None),
        )
        if args.command == "generate":
            run_generate(config, args.out)
        elif args.command == "train":
            run_train(config)
        elif args.command == "evaluate":
            run_evaluate(config, args.baselines)
        elif args.command == "backtest":
            every = args.retrain_every or config.backtest.retrain_every_weeks
            run_backtest_command(config, args.weeks, every)
        elif args.command == "promote":
            run_promote(config, args.version, args.rollback)
        elif args.command == "results":
            run_results(args.datasets)
        elif args.command == "import":
            run_import(args.name, args.source, args.out)
        elif args.command == "predict":
            run_predict(config, args.as_of, args.model, args.out)
    except CloseprobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
