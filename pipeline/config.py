"""The configuration: YAML validated into frozen, strict pydantic models.

A misspelt key or a wrong type fails at load time with the file and the key named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

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
    model_validator,
)

from closeprob.pipeline.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataConfig(_Strict):
    deals: Path = Path("data/deals.csv")
    interactions: Path = Path("data/interactions.csv")
    truth: Path | None = None
    attributes: tuple[str, ...] = ()
    unknown_deal_interactions: Literal["fail", "drop"] = "fail"
    # A public data set (pipeline/adapters): `train` imports it first when the files are missing.
    adapter: str | None = None


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


class SplitConfig(_Strict):
    validation_share: PositiveFloat = 0.15
    calibration_share: PositiveFloat = 0.15
    test_share: PositiveFloat = 0.2

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
    learning_rate: PositiveFloat = 0.03
    num_leaves: PositiveInt = 7
    min_child_samples: PositiveInt = 100
    max_estimators: PositiveInt = 3000
    early_stopping_rounds: PositiveInt = 150
    feature_fraction: PositiveFloat = Field(default=0.8, le=1.0)
    bagging_fraction: PositiveFloat = Field(default=0.8, le=1.0)
    bagging_freq: int = Field(default=1, ge=0)
    lambda_l2: NonNegativeFloat = 1.0
    n_jobs: PositiveInt = 2


class CalibrationConfig(_Strict):
    method: Literal["isotonic", "sigmoid"] = "sigmoid"


class ValueConfig(_Strict):
    """The deal-value estimate for deals without a declared amount."""

    segment: str | None = None
    min_declared: PositiveInt = 200


class UrgencyConfig(_Strict):
    """Optional staleness discount: a deal quiet for longer than `grace_days` loses half its
    expected value every `half_life_days`."""

    enabled: bool = False
    grace_days: NonNegativeFloat = 14.0
    half_life_days: PositiveFloat = 30.0


class RankingConfig(_Strict):
    a_share: PositiveFloat = Field(default=0.8, lt=1.0)
    b_share: PositiveFloat = Field(default=0.15, lt=1.0)
    capacity_per_owner: PositiveInt | None = None
    urgency: UrgencyConfig = UrgencyConfig()
    reasons: NonNegativeInt = 3  # 0: no reason codes (scoring skips TreeSHAP, ~3× faster)

    @model_validator(mode="after")
    def _tiers_fit_in_one(self) -> RankingConfig:
        if round(self.a_share + self.b_share, 9) > 1.0:
            raise ValueError(f"a_share + b_share = {self.a_share + self.b_share:.2f} exceeds 1")
        return self


class EvaluationConfig(_Strict):
    """Business metrics and the champion/challenger rule."""

    capacity: PositiveInt = 50
    segment: str | None = None
    primary_metric: str = "test_value_captured_at_capacity"
    log_loss_tolerance: NonNegativeFloat = 0.01


class BacktestConfig(_Strict):
    """Weekly retrains score their own queue, so their test slice can be small: the split used
    for each retrain (the backtest itself is the evaluation)."""

    split: SplitConfig = SplitConfig(validation_share=0.05, calibration_share=0.1, test_share=0.05)
    retrain_every_weeks: PositiveInt = 1  # 1 = retrain each week; N = reuse a model N weeks


class PredictConfig(_Strict):
    experiment: str = "close-probability-predictions"
    model_uri: str = "models:/close-probability@champion"
    out: Path = Path("outputs/priority_queue.csv")
    chunk_rows: PositiveInt = 100_000


class Config(_Strict):
    experiment: str = "close-probability"
    registered_model: str = "close-probability"
    seed: int = 42
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
    evaluation: EvaluationConfig = EvaluationConfig()
    backtest: BacktestConfig = BacktestConfig()


def parse_config(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a mapping into a Config; errors name the source and every bad key."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            + (f" (got {err['input']!r})" if err["type"] != "missing" else "")
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: invalid configuration: {problems}") from None


def load_config(path: Path) -> Config:
    """Read a YAML config file; unknown keys and wrong types are errors."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; pass --config PATH to an existing YAML")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return parse_config(raw, source=str(path))


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
