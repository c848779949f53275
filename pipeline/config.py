"""The configuration: YAML validated into frozen, strict pydantic models.

The defaults live here, as the fields' defaults; `configs/default.yaml` spells every one of them
out and a test keeps the two equal. A config file holds only what differs: every key it leaves
out takes the default (so a file is, in effect, merged over `configs/default.yaml`), with one
exception, as on the command line: a file that names its own data (`data.deals` or
`data.interactions`) does not inherit the built-in generator's `data.truth` nor `data.adapter`.

A misspelt key, a wrong type or an unknown metric fails at load time with the file and the key
named; columns named by the config are checked when the data are read (`named_columns`).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from closeprob.models.promotion import PROMOTABLE_METRICS
from closeprob.pipeline.errors import ConfigError
from closeprob.pipeline.paths import input_file_problem

# A closeprob config holds about 100 values; far more is a mistake or a YAML alias bomb.
MAX_VALUES = 10_000
# No error message echoes more of a value than this (a bad value can be huge).
SHOWN_CHARS = 100
log = logging.getLogger(__name__)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# The data contract's own deal columns: never model attributes (`outcome` is the label itself,
# `closed_at` is known only at the end, the ids and `amount` have their own features or uses).
CONTRACT_DEAL_COLUMNS = (
    "deal_id",
    "created_at",
    "closed_at",
    "outcome",
    "amount",
    "account_id",
    "owner_id",
)


TABLES = ("deals", "interactions")


class NumberFormatConfig(_Strict):
    decimal: Literal[".", ","]
    thousands: Literal[".", ",", " ", "'"] | None = None

    @model_validator(mode="after")
    def _two_different_separators(self) -> NumberFormatConfig:
        if self.thousands == self.decimal:
            raise ValueError(f"decimal and thousands separators are both {self.decimal!r}")
        return self


class DataConfig(_Strict):
    deals: Path = Path("data/deals.csv")
    interactions: Path = Path("data/interactions.csv")
    truth: Path | None = Path("data/truth.csv")  # the built-in generator's hidden truth (oracle)
    attributes: tuple[str, ...] = ("industry", "company_size", "source", "region", "product")
    unknown_deal_interactions: Literal["fail", "drop"] = "fail"
    # A public data set (pipeline/adapters): `train` imports it first when the files are missing.
    adapter: str | None = None
    # The adapter's raw export folder (salesforce, hubspot): imported again on every run.
    source: Path | None = None
    # The pipeline's stages in order: a stage change's `value` may name one (pipeline/stages.py).
    stages: tuple[str, ...] = ()
    # Raw values → the contract's, per column: {outcome: {"Closed Won": won, "Open": null}}.
    values: dict[str, dict[str, str | None]] = {}
    # How amounts write their separators, when the column cannot show it (`17.000`): e.g.
    # {decimal: ",", thousands: "."}. None: inferred, an ambiguous column refused.
    number_format: NumberFormatConfig | None = None
    # Amounts in several currencies (a `currency` column): each one's rate to one reporting
    # currency, e.g. {USD: 1.0, EUR: 1.08}; several currencies without rates is an error.
    currency_rates: dict[str, PositiveFloat] = {}
    # Interactions dated before their deal's creation: keep (counted) or drop (counted).
    events_before_creation: Literal["keep", "drop"] = "keep"
    # One deal holding more than this share of all interactions is flagged (pipeline/plausibility).
    max_deal_event_share: float = Field(default=0.1, gt=0.0, le=1.0)
    # Input columns that look set at close (pipeline/leaks.py) but are known at creation.
    allow_suspect_columns: tuple[str, ...] = ()
    # The export's own headers: contract or configured name -> header, e.g. {amount: "Amount"};
    # per file under `deals:` / `interactions:` where the two name a column differently.
    columns: dict[str, str | dict[str, str]] = {}
    # Interaction rows equal in every column (an export imported twice): drop | keep | fail.
    duplicate_interactions: Literal["drop", "keep", "fail"] = "drop"
    # A header-only interactions table: an error at `train` unless the data set has no events
    # by nature (attributes only); at `predict` always a warning.
    empty_interactions: Literal["fail", "allow"] = "fail"
    # A declared amount above this multiple of its value.segment's median is flagged (a typo?).
    amount_outlier_multiple: PositiveFloat = 1000.0

    @field_validator("columns")
    @classmethod
    def _per_file_keys(cls, columns: dict[str, Any]) -> dict[str, Any]:
        nested = [k for k, v in columns.items() if isinstance(v, dict) and k not in TABLES]
        if nested:
            raise ValueError(
                f"{nested[0]!r} maps to a mapping; only {list(TABLES)} may (per-file headers), "
                f"e.g. columns: {{deals: {{deal_id: 'Record ID'}}}}"
            )
        return columns

    def columns_for(self, table: str) -> dict[str, str]:
        """The header mapping of one file ('deals' or 'interactions'): the shared entries,
        overridden by that file's own."""
        shared = {k: v for k, v in self.columns.items() if isinstance(v, str)}
        own = self.columns.get(table, {})
        return shared | (own if isinstance(own, dict) else {})

    @model_validator(mode="after")
    def _attributes_are_not_contract_columns(self) -> DataConfig:
        refused = [name for name in self.attributes if name in CONTRACT_DEAL_COLUMNS]
        if refused:
            raise ValueError(
                f"attributes {refused} are columns of the data contract, not model inputs "
                f"({', '.join(CONTRACT_DEAL_COLUMNS)}): `outcome` and `closed_at` are the label "
                "and would leak it, the ids and amount have their own features. Remove them "
                "from data.attributes"
            )
        return self


class GenerateConfig(_Strict):
    n_deals: PositiveInt = 5000
    n_interactions: PositiveInt = 100_000
    start: str = "2023-01-01"
    days: PositiveInt = 730


class SnapshotConfig(_Strict):
    every_days: PositiveInt = 7
    horizon_days: PositiveInt = 90


class FeatureConfig(_Strict):
    windows_days: tuple[PositiveInt, ...] = (7, 30, 90)
    max_types: PositiveInt = 20
    stage_event_type: str = "stage_change"
    prior_strength: PositiveFloat = 20.0
    # Track-record features for these keys, where the deals table has the column.
    history_keys: tuple[Literal["owner_id", "account_id"], ...] = ("owner_id", "account_id")
    # Activity against every open deal's over this many days (0: off): seasons quieten all
    # deals at once, and absolute counts alone read a quiet August as stalled deals.
    market_window_days: NonNegativeInt = 30
    # Stage moves in the last 30 days and moved back, from the stage-change events.
    stage_history: bool = True
    # Percentile ranks of age, quiet time, activity and track records among the deals open at
    # the same as_of (features/snapshot_ranks.py): values that stay in range under drift.
    snapshot_ranks: bool = False
    # Days from each as_of to its quarter's last day (features/calendar.py): where closes bunch
    # up at quarter ends, the won rate within the horizon follows the calendar.
    calendar: bool = False


class SplitConfig(_Strict):
    validation_share: PositiveFloat = 0.15
    calibration_share: PositiveFloat = 0.15
    test_share: PositiveFloat = 0.2
    # Rolling-origin folds that choose the tree count and blend weight: the validation slice
    # and up to this many minus one runs of as many dates before it (models/selection.py).
    selection_folds: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _shares_leave_room_for_training(self) -> SplitConfig:
        total = self.validation_share + self.calibration_share + self.test_share
        if round(total, 9) >= 0.9:
            raise ValueError(
                f"validation_share + calibration_share + test_share = {total:.2f}; "
                "keep it below 0.9 so that training has snapshots left"
            )
        return self


class ModelConfig(_Strict):
    """LightGBM parameters under LightGBM's own names, passed through to it as they are.

    `min_child_samples`, `num_leaves` and `early_stopping_round` are upper bounds: training
    lowers them to what its row count supports (models/training.py, `capacity_for_rows`).
    """

    learning_rate: PositiveFloat = 0.03
    num_leaves: int = Field(default=7, ge=2)
    min_child_samples: PositiveInt = 100
    n_estimators: PositiveInt = 3000  # the most trees; early stopping picks the count
    early_stopping_round: PositiveInt = 150
    feature_fraction: PositiveFloat = Field(default=0.8, le=1.0)
    bagging_fraction: PositiveFloat = Field(default=0.8, le=1.0)
    bagging_freq: int = Field(default=1, ge=0)
    lambda_l2: NonNegativeFloat = 1.0
    linear_tree: bool = False
    num_threads: PositiveInt = 2
    # Scale rules, not LightGBM's; each acts only above its row count, so smaller data train
    # exactly as without it (docs/performance.md, "Scale rules", measures each). null: off.
    # Above `learning_rate_rows` deployed fit rows the learning rate grows with the square
    # root of the rows up to `max_learning_rate`, and the tree cap and patience shrink to
    # match (models/training.py, `pace_for_rows`).
    learning_rate_rows: PositiveInt = 200_000
    max_learning_rate: PositiveFloat | None = 0.1
    # Each booster (selection folds, cross-fit parts, the deployed one) is fitted on a seeded
    # sample of at most this many of its fit rows (models/training.py, `sample_rows`).
    booster_rows: PositiveInt | None = 500_000
    # The blend's logistic regression is fitted on a seeded sample of at most this many rows
    # (models/baselines.py, `fit_logistic`).
    logistic_rows: PositiveInt | None = 200_000


class CalibrationConfig(_Strict):
    """How the deployed model is calibrated: on the rows of the last `window_share` of labelled
    snapshot dates of every fitted deal, each scored out of fold by a model fitted without its
    deal (`folds` groups of deals, cross-fitted); a `holdout_share` of the deals seen there is
    held out of every fit for champion/challenger."""

    method: Literal["isotonic", "sigmoid"] = "sigmoid"
    window_share: PositiveFloat = Field(default=0.15, lt=1.0)
    holdout_share: PositiveFloat = Field(default=0.25, le=0.5)
    folds: int = Field(default=3, ge=2, le=10)
    # sigmoid: Platt's slope from every labelled row's out-of-fold score, the intercept from
    # the recent window; false: both from the recent window (models/recent_calibration.py)
    pool_slope: bool = True


class ValueConfig(_Strict):
    """The deal-value estimate for deals without a declared amount, and what a deal is worth:
    `source: deal` its value alone; `source: clv` its value plus its account's expected value
    over `clv_horizon_days` (BG/NBD and Gamma-Gamma on the won deals before `as_of`)."""

    segment: str | None = "company_size"
    min_declared: PositiveInt = 200
    source: Literal["deal", "clv"] = "deal"
    clv_horizon_days: PositiveInt = 365
    clv_annual_discount_rate: NonNegativeFloat = 0.1
    clv_min_accounts: PositiveInt = 20  # fewer accounts with a win before as_of: no CLV


class UrgencyConfig(_Strict):
    """Optional staleness discount: a deal quiet for longer than `grace_days` loses half its
    expected value every `half_life_days`."""

    enabled: bool = False
    grace_days: NonNegativeFloat = 14.0
    half_life_days: PositiveFloat = 30.0


class RankingConfig(_Strict):
    # A/B/C tiers by the deal's expected value, or by its account's CLV (value.source: clv).
    tier_by: Literal["expected_value", "account_clv"] = "expected_value"
    a_share: PositiveFloat = Field(default=0.8, lt=1.0)
    b_share: PositiveFloat = Field(default=0.15, lt=1.0)
    capacity_per_owner: PositiveInt | None = None
    urgency: UrgencyConfig = UrgencyConfig()
    reasons: NonNegativeInt = 3  # 0: no reason codes (scoring skips TreeSHAP, ~3× faster)
    # Exact reason codes (TreeSHAP, the costliest step of scoring) for the deals people read:
    # "read" = each owner's first `reasons_owner_top` deals and the queue's first
    # `reasons_top_share`; "all" = every deal. p_close is computed for every deal either way.
    reasons_for: Literal["read", "all"] = "read"
    reasons_owner_top: PositiveInt = 10
    reasons_top_share: PositiveFloat = Field(default=0.1, le=1.0)

    @model_validator(mode="after")
    def _tiers_fit_in_one(self) -> RankingConfig:
        if round(self.a_share + self.b_share, 9) > 1.0:
            raise ValueError(f"a_share + b_share = {self.a_share + self.b_share:.2f} exceeds 1")
        return self


class EvaluationConfig(_Strict):
    """Business metrics and the champion/challenger rule."""

    capacity: PositiveInt = 50
    segment: str | None = "source"
    primary_metric: str = "test_value_captured_at_capacity"
    log_loss_tolerance: NonNegativeFloat = 0.01
    # A test ROC-AUC above this (or at/above the oracle's) is not believed: registered, never
    # promoted. Real close prediction rarely passes 0.9; a label leak easily does.
    max_plausible_auc: float = Field(default=0.98, gt=0.5, le=1.0)
    bootstrap_resamples: int = Field(default=200, ge=20)  # resamples of deals for 95 % intervals
    # Open deals' mean p_close under this share of the past win rate of open deals of their
    # ages: registered, not promoted (a model that tells open deals from closed ones).
    min_queue_ratio: float = Field(default=0.2, ge=0.0, lt=1.0)

    @field_validator("primary_metric")
    @classmethod
    def _a_metric_training_logs(cls, name: str) -> str:
        if name not in PROMOTABLE_METRICS:
            raise ValueError(
                f"{_shown(name)} is not a test metric that training logs with higher = better; "
                f"choose one of {list(PROMOTABLE_METRICS)}"
            )
        return name


class BacktestConfig(_Strict):
    """Weekly retrains score their own queue, so their test slice can be small: the split used
    for each retrain (the backtest itself is the evaluation)."""

    split: SplitConfig = SplitConfig(validation_share=0.05, calibration_share=0.1, test_share=0.05)
    retrain_every_weeks: PositiveInt = 1  # 1 = retrain each week; N = reuse a model N weeks


class SparkConfig(_Strict):
    """The Spark engine (`--engine spark`; `pip install -e '.[spark]'` and Java 17)."""

    master: str = "local[*]"  # any master URL; an active SparkSession is reused as it is
    partitions: PositiveInt | None = None  # deal buckets; default: Spark's default parallelism
    driver_memory: str = "2g"  # only when this process starts the JVM
    # `train --engine spark` writes its snapshot × deal feature table here (a Parquet folder).
    training_features: Path = Path("outputs/training_features.parquet")
    # predict's health: feature PSIs from the feature rows of this many open deals (a uniform
    # sample; all when fewer), brought to the driver (pipeline/spark/health.py).
    health_sample_deals: PositiveInt = 50_000


class PredictConfig(_Strict):
    engine: Literal["local", "spark"] = "local"
    out: Path = Path("outputs/priority_queue.csv")
    chunk_rows: PositiveInt = 100_000
    # The score table (pipeline/scores_db.py): sqlite:///… or postgresql://…; none: a SQLite
    # file scores.db beside the queue (outputs/scores.db); "off": no table.
    to: str | None = None
    # A second predict on the same queue waits this long for the first, then exits 75.
    lock_wait_seconds: NonNegativeFloat = 0.0
    html: bool = True  # the queue as one HTML page beside it (queue.csv -> queue.html)
    # Deal columns copied into the queue and the report after deal_id (deal name, stage…).
    columns: tuple[str, ...] = ()


class HealthConfig(_Strict):
    """Model health in every batch (docs/model-health.md): a feature drifts when its PSI passes
    `psi_warn` and the PSI a batch of its size reaches by chance with probability
    `noise_alpha`; `monitor` says a retrain is due when the realised ROC-AUC fell below the
    expected interval on `retrain_after_misses` consecutive past queues, or when the model is
    more than `retrain_days_stale` days beyond its horizon."""

    psi_warn: PositiveFloat = 0.25
    noise_alpha: float = Field(default=0.001, gt=0.0, lt=0.5)
    retrain_after_misses: PositiveInt = 2
    retrain_days_stale: PositiveInt = 90
    expected_draws: int = Field(default=500, ge=100)  # simulated outcome sets per past queue
    # The training reference (feature and score bins) from a seeded uniform sample of at most
    # this many of the deployed model's fit rows; None: all of them.
    reference_rows: PositiveInt | None = 500_000


BUILTIN_NAME = "close-probability"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
# Keys that `name` replaced: each now derives from it.
RENAMED_KEYS = {
    "experiment": "the experiment is named <name>",
    "registered_model": "the registered model is named <name>",
}
RENAMED_PREDICT_KEYS = {
    "experiment": "the prediction experiment is named <name>-predictions",
    "model_uri": "the default model is models:/<name>@champion (or pass --model)",
}


class Config(_Strict):
    # The folder this config's relative paths start from, itself relative to the config
    # file's folder: "." the file's own folder, ".." the project folder above configs/
    # (`resolve_paths`). Paths given on the command line start from the working directory.
    root: Path = Path(".")
    # One name for the experiment, the registered model and the prediction experiment.
    name: str = Field(default=BUILTIN_NAME, pattern=NAME_PATTERN)
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 42  # NumPy's and LightGBM's seed range
    data: DataConfig = DataConfig()
    generate: GenerateConfig = GenerateConfig()
    snapshots: SnapshotConfig = SnapshotConfig()
    features: FeatureConfig = FeatureConfig()
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    value: ValueConfig = ValueConfig()
    ranking: RankingConfig = RankingConfig()
    predict: PredictConfig = PredictConfig()
    spark: SparkConfig = SparkConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    backtest: BacktestConfig = BacktestConfig()
    health: HealthConfig = HealthConfig()

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, raw: Any) -> Any:
        """Configs written before `name` existed say what replaced their keys."""
        if not isinstance(raw, dict):
            return raw
        predict: dict[str, Any] = raw["predict"] if isinstance(raw.get("predict"), dict) else {}
        found = [f"{k!r} ({RENAMED_KEYS[k]})" for k in RENAMED_KEYS if k in raw]
        found += [f"'predict.{k}' ({v})" for k, v in RENAMED_PREDICT_KEYS.items() if k in predict]
        if found:
            raise ValueError(
                f"{', '.join(found)}: replaced by one key, name: set `name: <yours>` and drop "
                f"{'them' if len(found) > 1 else 'it'}"
            )
        return raw

    @property
    def experiment(self) -> str:
        return self.name

    @property
    def registered_model(self) -> str:
        return self.name

    @property
    def prediction_experiment(self) -> str:
        return f"{self.name}-predictions"

    @property
    def model_uri(self) -> str:
        """The registry's champion of this name: what `predict` scores with by default."""
        return f"models:/{self.name}@champion"


def parse_config(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a mapping into a Config; errors name the source and every bad key."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {_cut(err['msg'], 400)}"
            + (f" (got {_shown(err['input'])})" if err["type"] != "missing" else "")
            for err in errors[:10]
        )
        more = f"; and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ConfigError(f"{source}: invalid configuration: {problems}{more}") from None


def load_config(path: Path) -> Config:
    """Read a YAML config file; keys it leaves out take the defaults (module docstring)."""
    problem = input_file_problem(path)
    if problem is not None:
        raise ConfigError(f"{path}: config {problem}; pass --config PATH to a readable YAML file")
    try:
        raw = yaml.load(_config_text(path), Loader=UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    values = _count_values(raw, path)
    if values > MAX_VALUES:
        raise ConfigError(
            f"{path}: the YAML expands to more than {MAX_VALUES:,} values (through aliases?); "
            "a closeprob config holds about 100. Write the values out instead of aliasing them"
        )
    config = parse_config(_own_data_without_generator(raw), source=str(path))
    resolved = resolve_paths(config, path.parent)
    if "root" not in raw:
        _check_moved_inputs(config, resolved, path, written=_data_keys(raw))
    return resolved


# (section, field) of every path a config holds; `predict.to` may hold a sqlite:/// path too.
PATH_FIELDS = (
    ("data", "deals"),
    ("data", "interactions"),
    ("data", "truth"),
    ("data", "source"),
    ("predict", "out"),
    ("spark", "training_features"),
)
SQLITE = "sqlite:///"


def resolve_paths(config: Config, folder: Path) -> Config:
    """The config with every relative path, and a relative `sqlite:///` URL in `predict.to`,
    made to start from `folder / config.root` (`folder`: the config file's); `root` becomes
    that folder. Joined without following links, as a shell's `cd configs/..` reads."""
    base = _joined(folder, config.root)
    updates: dict[str, dict[str, Any]] = {}
    for section, key in PATH_FIELDS:
        value = getattr(getattr(config, section), key)
        if value is not None and not value.is_absolute():
            updates.setdefault(section, {})[key] = _joined(base, value)
    to = config.predict.to
    if to is not None and to.startswith(SQLITE) and not to.removeprefix(SQLITE).startswith("/"):
        database = _joined(base, Path(to.removeprefix(SQLITE)))
        updates.setdefault("predict", {})["to"] = f"{SQLITE}{database}"
    sections = {
        name: getattr(config, name).model_copy(update=changed) for name, changed in updates.items()
    }
    return config.model_copy(update={"root": base, **sections})


def _joined(base: Path, path: Path) -> Path:
    return Path(os.path.normpath(base / path))


def _data_keys(raw: dict[str, Any]) -> set[str]:
    """The `data:` keys the file itself writes (not those it takes from default.yaml)."""
    data = raw.get("data")
    return set(data) if isinstance(data, dict) else set()


def _check_moved_inputs(config: Config, resolved: Config, path: Path, written: set[str]) -> None:
    """A config without `root` that writes a data path missing from its folder but present in
    the working directory was written for the old rule (paths from the working directory): say
    so, with the `root:` that restores it, instead of reading or generating other data. A path
    the file leaves to default.yaml was not written for either rule: it is not checked."""
    for key in ("deals", "interactions"):
        if key not in written:
            continue
        written_path, now = getattr(config.data, key), getattr(resolved.data, key)
        if written_path == now or now.exists() or not written_path.exists():
            continue
        back = Path(os.path.relpath(Path.cwd(), path.parent.resolve()))
        raise ConfigError(
            f"{path}: data.{key} {str(written_path)!r} is read from the config's folder since "
            f"relative paths in a config start there ({now}: not found), but {written_path} exists "
            f"in the working directory, where it was read before. Add `root: {back}` to "
            f"{path} (its relative paths then start from {Path.cwd()}), or write the path "
            "from the config's folder"
        )


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error on one line: where, and what."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return f"line {mark.line + 1}, column {mark.column + 1}: {_cut(what, 300)}"
    return _cut(" ".join(str(exc).split()), 300)


def _config_text(path: Path) -> str:
    """The file as UTF-8 text, or a ConfigError naming the first bad byte's line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: config cannot be read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bom = (
            " (it starts with a UTF-16 byte-order mark)"
            if raw[:2] in (b"\xff\xfe", b"\xfe\xff")
            else ""
        )
        raise ConfigError(
            f"{path}: line {line}: not UTF-8 text{bom}: byte {raw[exc.start : exc.start + 1]!r} "
            "cannot be decoded; save the config as UTF-8"
        ) from None


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, but a key given twice in one mapping (a second `data:` block, say) is
    an error instead of the later one silently winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (first on line {seen[key]}); "
                    "merge the two into one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _own_data_without_generator(raw: dict[str, Any]) -> dict[str, Any]:
    """A file naming its own data does not inherit the generator's truth file nor an adapter."""
    data = raw.get("data")
    if not isinstance(data, dict) or not ({"deals", "interactions"} & set(data)):
        return raw
    own = {"truth": None, "adapter": None} | data
    return raw | {"data": own}


def _count_values(raw: object, path: Path) -> int:
    """Values in `raw` once every alias is expanded, stopping past MAX_VALUES; each shared
    node is counted once per reference, without expanding it."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: object) -> int:
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ConfigError(f"{path}: a YAML alias refers to itself; write the values out")
        open_nodes.add(key)
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_VALUES:
                break
        open_nodes.discard(key)
        sizes[key] = total
        return total

    return size(raw)


def _shown(value: object) -> str:
    """`repr(value)`, cut: an error message never echoes a huge value."""
    return _cut(repr(value), SHOWN_CHARS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def named_columns(config: Config) -> dict[str, tuple[str, ...]]:
    """Deal columns the config names, by key: checked when the deals table is read."""
    named = {"data.attributes": config.data.attributes}
    if config.predict.columns:
        named["predict.columns"] = config.predict.columns
    for key, column in (
        ("evaluation.segment", config.evaluation.segment),
        ("value.segment", config.value.segment),
    ):
        if column is not None:
            named[key] = (column,)
    return named


def with_data_paths(
    config: Config, deals: Path | None = None, interactions: Path | None = None
) -> Config:
    """The config with the data paths given on the command line, if any."""
    updates: dict[str, Any] = {}
    if deals is not None:
        updates["deals"] = deals
    if interactions is not None:
        updates["interactions"] = interactions
    if updates:
        # A user's own data has no generator truth file.
        updates["truth"] = None
        updates["adapter"] = None
    return config.model_copy(update={"data": config.data.model_copy(update=updates)})


def is_builtin_data(data: DataConfig) -> bool:
    """The built-in synthetic CRM: the default path, or files generated with their truth file."""
    default = DataConfig()
    if data.deals == default.deals and data.interactions == default.interactions:
        return True
    return data.truth is not None and data.truth.parent == data.deals.parent


def with_name(config: Config, name: str | None = None) -> Config:
    """The config named `name`, else its own name, else (own data left under the built-in
    name) a name derived from the deals file's folder: training on one's own data never
    registers into the built-in `close-probability`."""
    if name is None and (config.name != BUILTIN_NAME or is_builtin_data(config.data)):
        return config
    if name is None:
        folder = config.data.deals.resolve().parent.name
        name = re.sub(r"[^a-z0-9_.-]+", "-", folder.casefold()).strip("-._") or "my-crm"
        name = name if name != BUILTIN_NAME else f"{name}-own"
        log.info(
            f"name: {name!r} (from the folder of {config.data.deals}, not the built-in data; "
            "set name: in the config or pass --name)"
        )
    if not re.fullmatch(NAME_PATTERN, name):
        raise ConfigError(
            f"name {name!r} is not usable as an MLflow experiment and model name; use letters, "
            "digits, '-', '_' and '.', starting with a letter or digit (e.g. acme-crm)"
        )
    return config.model_copy(update={"name": name})


def flatten_config(config: Config) -> dict[str, str]:
    """Dotted keys to string values, for MLflow params."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            flat[prefix] = str(value)

    walk("", config.model_dump(mode="json"))
    return flat
