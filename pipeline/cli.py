"""`closeprob <command>` (or `python -m closeprob`): the one entry point of every job.

Commands: check, generate, import, train, evaluate, backtest, results, promote, predict,
monitor, history, migrate-model. Errors a user can fix, and tracking-store errors, print one
line `error: …` and exit with code 2; nothing is written. A temporary failure (the score
database does not answer, another predict holds the queue's lock) exits 75, so a scheduler may
retry. `predict --fail-on-drift` exits 3 when the batch drifted, after writing the queue.
Ctrl-C and SIGTERM print one line and exit 130 and 143. `-v` shows debug messages, `-q` only
warnings and errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from closeprob.pipeline.config import Config, load_config, with_data_paths, with_name
from closeprob.pipeline.errors import (
    DRIFT_EXIT_CODE,
    CloseprobError,
    DriftDetected,
    RetryableError,
)
from closeprob.pipeline.signals import Terminated, sigterm_as_exception, stopped_by
from closeprob.pipeline.store import (
    check_store,
    set_mlflow_environment_defaults,
    store_error_message,
)

DEFAULT_CONFIG = Path("configs/default.yaml")
EXIT_RETRY = 75  # EX_TEMPFAIL (sysexits.h): a database, the store or a lock is unavailable


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (0 and negatives are refused, not clamped)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _command(
    commands: argparse._SubParsersAction, name: str, text: str, data: bool = False
) -> argparse.ArgumentParser:
    """A subcommand with --config and, for those that read the data, --deals/--interactions."""
    command: argparse.ArgumentParser = commands.add_parser(name, help=text)
    command.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    # -v/-q after the command too; SUPPRESS keeps the top-level value when not given here.
    loudness = command.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    loudness.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)
    if data:
        command.add_argument(
            "--deals", type=Path, default=None, help="deals table (.csv or .parquet)"
        )
        command.add_argument("--interactions", type=Path, default=None, help="interactions table")
        command.add_argument(
            "--name",
            default=None,
            help="names the experiment and registered model (default: the config's `name`, "
            "or your deals file's folder)",
        )
    return command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="closeprob", description=__doc__)
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true", help="also debug messages")
    loudness.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = parser.add_subparsers(dest="command", required=True)
    check = _command(
        commands, "check", "check the data against the contract; list every problem", data=True
    )
    check.add_argument(
        "--for",
        dest="purpose",
        choices=("train", "predict"),
        default="train",
        help="the job the data are meant for (default: train)",
    )
    generate = _command(commands, "generate", "write the built-in synthetic CRM to data/")
    generate.add_argument(
        "--out", type=Path, default=None, help="folder (default: the config's data paths)"
    )
    generate.add_argument(
        "--force", action="store_true", help="replace existing files (they may be your data)"
    )
    train = _command(commands, "train", "train, evaluate, log and register a model", data=True)
    train.add_argument(
        "--engine", choices=("local", "spark"), default="local", help="builds the feature table"
    )
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
    backtest.add_argument(
        "--weeks", type=_positive_int, default=8, help="how many past weekly as_of dates (≥ 1)"
    )
    backtest.add_argument(
        "--retrain-every",
        type=_positive_int,
        default=None,
        help="retrain every N weeks, N ≥ 1 (default: config)",
    )
    promote = _command(commands, "promote", "set the champion alias by hand")
    which = promote.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", help="registry version to make champion")
    which.add_argument("--rollback", action="store_true", help="back to the previous champion")
    migrate = _command(
        commands, "migrate-model", "rebuild a model of an earlier closeprob as a native model"
    )
    migrate.add_argument(
        "uri", help="the earlier model: models:/NAME/3, runs:/<id>/model, a folder"
    )
    migrate.add_argument(
        "--trust-pickle",
        action="store_true",
        help="you trust the registry the model came from (unpickling runs its code)",
    )
    migrate.add_argument(
        "--name", default=None, help="register under this name (default: the URI's, or config's)"
    )
    predict = _command(commands, "predict", "score open deals into the priority queue", data=True)
    predict.add_argument(
        "--as-of", default=None, help="score as of this instant (default: end of data)"
    )
    predict.add_argument("--model", default=None, help="MLflow model URI (default: the config's)")
    predict.add_argument("--out", type=Path, default=None, help="queue file, .csv or .parquet")
    predict.add_argument(
        "--engine", choices=("local", "spark"), default=None, help="default: predict.engine"
    )
    predict.add_argument(
        "--fail-on-drift",
        action="store_true",
        help="exit 3 when the batch drifted from the training rows (the queue is still written)",
    )
    predict.add_argument(
        "--to",
        default=None,
        help="score table: sqlite:///FILE or postgresql://… or 'off' (default: predict.to, "
        "else scores.db beside the queue)",
    )
    _command(
        commands,
        "monitor",
        "past queues against the outcomes now known: realised vs expected, retrain due?",
        data=True,
    )
    history = _command(commands, "history", "a deal's scores over time and why they changed")
    history.add_argument("deal_id", help="the deal's id, as in the queue")
    history.add_argument(
        "--to", default=None, help="score table to read (default: predict.to, as predict does)"
    )
    return parser


NEEDS_DATA = ("train", "evaluate", "backtest")


def _dispatch(args: argparse.Namespace, config: Config) -> None:
    """Run the job module of `args.command` (imported here, so `--help` stays fast). The jobs
    that read the configured data get it first if it is missing: the built-in CRM generated,
    or a public data set imported (so a job itself never imports the generator)."""
    if getattr(args, "as_of", None) is not None:
        from closeprob.pipeline.scoring import parse_as_of

        parse_as_of(args.as_of)  # a bad --as-of is one error line before any work
    if args.command in NEEDS_DATA:
        from closeprob.pipeline.jobs.generate import ensure_data

        ensure_data(config)
    if args.command == "check":
        from closeprob.pipeline.jobs.check import run_check

        run_check(config, args.purpose)
    elif args.command == "generate":
        from closeprob.pipeline.jobs.generate import run_generate

        run_generate(config, args.out, args.force)
    elif args.command == "import":
        from closeprob.pipeline.jobs.generate import run_import

        run_import(args.name, args.source, args.out)
    elif args.command == "train":
        from closeprob.pipeline.jobs.train import run_train

        run_train(config, args.engine)
    elif args.command == "evaluate":
        from closeprob.pipeline.jobs.evaluate import run_evaluate

        run_evaluate(config, args.baselines)
    elif args.command == "backtest":
        from closeprob.pipeline.jobs.backtest import run_backtest_job

        every = args.retrain_every or config.backtest.retrain_every_weeks  # both are ≥ 1
        run_backtest_job(config, args.weeks, every)
    elif args.command == "promote":
        from closeprob.pipeline.jobs.promote import run_promote

        run_promote(config, args.version, args.rollback)
    elif args.command == "migrate-model":
        from closeprob.pipeline.jobs.migrate_model import run_migrate_model
        from closeprob.pipeline.registry import registered_name

        name = args.name or registered_name(args.uri, config.registered_model)
        run_migrate_model(args.uri, args.trust_pickle, name)
    elif args.command == "results":
        from closeprob.pipeline.jobs.results import run_results

        run_results(args.datasets)
    elif args.command == "history":
        from closeprob.pipeline.jobs.history import run_history

        run_history(config, args.deal_id, args.to)
    elif args.command == "predict":
        from closeprob.pipeline.jobs.predict import run_predict

        run_predict(
            config, args.as_of, args.model, args.out, args.engine, args.fail_on_drift, args.to
        )
    elif args.command == "monitor":
        from closeprob.pipeline.jobs.monitor import run_monitor

        run_monitor(config)


class _ConsoleHandler(logging.Handler):
    """Info to stdout, warnings and errors to stderr prefixed with their level; the streams
    are looked up at each message (so a caller's redirection, or pytest's, is honoured).
    Written to a file or a pipe (cron, systemd, Airflow), each message starts with its UTC
    time; on a terminal it does not."""

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        if not _is_terminal(stream):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
            lead = "\n" * (len(message) - len(message.lstrip("\n")))  # blank lines stay blank
            message = f"{lead}{stamp} {message.lstrip(chr(10))}"
        print(message, file=stream, flush=True)


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def configure_logging(verbose: bool, quiet: bool) -> None:
    """closeprob's loggers to the console: INFO by default, DEBUG with -v, WARNING with -q."""
    logger = logging.getLogger("closeprob")
    logger.handlers = [_ConsoleHandler()]
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    # MLflow's own INFO lines (database set-up, input-example validation) only with -v.
    level = "DEBUG" if verbose else "WARNING"
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", level)  # read when MLflow is imported
    logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())


# Commands that write to the tracking store, and whether they may create a new SQLite store
# (`predict` checks its own: whether it may create one depends on its model URI).
STORE_WRITERS = {
    "train": True,
    "evaluate": True,
    "backtest": True,
    "results": True,
    "migrate-model": True,
}
STORE_READERS = {"promote": False, "monitor": False}  # monitor logs a run, into an existing store


@contextmanager
def closing_figures() -> Iterator[None]:
    """Charts a job drew and did not log (it stopped or refused its model first) are closed
    when it ends; charts that existed before are left alone."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    before = set(pyplot.get_fignums()) if pyplot is not None else set()
    try:
        yield
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            for number in set(pyplot.get_fignums()) - before:
                pyplot.close(number)


def main(argv: list[str] | None = None) -> int:
    set_mlflow_environment_defaults()  # before MLflow is imported: telemetry starts then
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error (code 2) or --help (0)
        return exc.code if isinstance(exc.code, int) else 2
    configure_logging(args.verbose, args.quiet)
    try:
        with sigterm_as_exception():
            # `import` reads no config: it runs in a team's own folder, without configs/.
            config = with_data_paths(
                Config()
                if args.command == "import" and args.config == DEFAULT_CONFIG
                else load_config(args.config),
                getattr(args, "deals", None),
                getattr(args, "interactions", None),
            )
            config = with_name(config, getattr(args, "name", None))
            create = (STORE_WRITERS | STORE_READERS).get(args.command)
            if create is not None:
                check_store(create)
            with closing_figures():
                _dispatch(args, config)
    except RetryableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RETRY
    except CloseprobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DriftDetected:  # the warning is out and the queue written: only the exit code
        return DRIFT_EXIT_CODE
    except (KeyboardInterrupt, Terminated) as exc:
        number = stopped_by(exc)
        print(
            f"stopped by {number.name}: nothing more was published (an earlier queue, model "
            "version and aliases stay as they were; an open MLflow run is marked KILLED)",
            file=sys.stderr,
        )
        return 128 + number.value
    except Exception as exc:
        message = store_error_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0
