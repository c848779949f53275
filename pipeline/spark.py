"""The Spark engine (`--engine spark`): the batch job's features and scores computed on Apache
Spark, per partition of deals, by the local engine's own functions.

Interactions are read by Spark (Parquet, a file or a partitioned folder, or CSV) and
hash-bucketed by deal id into `partitions` buckets, so every event of a deal lands in one
bucket; each bucket is cogrouped with the open deals of the same bucket and handed, once, to
`build_features` and `score_features` (predict.py) through `applyInPandas`. One pandas call per
bucket, never per deal (a per-deal call costs ~20 ms of Spark/Arrow overhead). The deals table
(one row per deal: every bucket needs all of it for the owner and account track records) is
read on the driver, validated as the local engine does, and shipped with the function. The
one-row-per-open-deal scores come back to the driver, which ranks them globally with the local
`rank_queue`; exact reasons are then computed, in Spark again, only for the deals people read.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from closeprob.features.build import build_features
from closeprob.features.market import market_levels, open_deal_counts, window_event_counts
from closeprob.features.registry import categorical_features, feature_descriptions
from closeprob.features.spec import FeatureSpec
from closeprob.models.classifier import CloseModel
from closeprob.pipeline.config import Config, DataConfig, SparkConfig, named_columns
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.dataset import (
    Purpose,
    check_deals,
    check_interactions,
    no_interactions,
)
from closeprob.pipeline.errors import CloseprobError, DataContractError
from closeprob.pipeline.registry import check_model_matches
from closeprob.pipeline.scoring import (
    default_as_of,
    explain_features,
    open_snapshots,
    parse_as_of,
    rank_queue,
    reason_rows,
    score_features,
    snapshot_features,
    with_reasons,
)
from closeprob.pipeline.validate import (
    Problems,
    parse_timestamps,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from closeprob.pipeline.core import FeatureBuilder
    from closeprob.pipeline.registry import LoadedModel

# pyspark 4.3 warns on every Arrow conversion (thousands per run) that pandas 3 is "not fully
# supported"; the paths used here are covered by the parity tests. Only that warning is hidden,
# in the driver (filter) and in the Python workers (PYTHONWARNINGS, inherited from the driver).
PANDAS3_WARNING = "PySpark does not yet fully support pandas"
INSTALL_JAVA = (
    "install a Java 17 runtime (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`; "
    "macOS: `brew install openjdk@17`) or point JAVA_HOME at one, or use --engine local"
)


log = logging.getLogger(__name__)
T = TypeVar("T")


class SparkUnavailableError(CloseprobError):
    """The Spark engine was asked for but Java or pyspark is missing."""


def require_java() -> None:
    """Spark runs on a JVM: fail with how to install one when there is none."""
    home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (home and Path(home, "bin", "java").is_file()):
        raise SparkUnavailableError(
            f"the spark engine needs Java, which was not found: {INSTALL_JAVA}"
        )


def spark_session(settings: SparkConfig) -> SparkSession:
    """The active SparkSession if there is one (an existing session is reused as it is, apart
    from the UTC time zone), else a new one on `settings.master`.

    Workers run this interpreter (PYSPARK_PYTHON), so they import the same closeprob. Times
    cross Arrow as UTC wall clock: the session time zone must be UTC.
    """
    require_java()
    warnings.filterwarnings("ignore", message=PANDAS3_WARNING, category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailableError(
            "the spark engine needs pyspark: pip install -e '.[spark]' (or use --engine local)"
        ) from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    quiet = f"ignore:{PANDAS3_WARNING}:FutureWarning"
    if quiet not in os.environ.get("PYTHONWARNINGS", ""):
        os.environ["PYTHONWARNINGS"] = ",".join(
            filter(None, [os.environ.get("PYTHONWARNINGS"), quiet])
        )
    session = (
        SparkSession.builder.master(settings.master)
        .appName("closeprob")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .getOrCreate()
    )
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return session


def read_spark_table(spark: SparkSession, path: Path) -> DataFrame:
    """Parquet (a file or a partitioned folder) or CSV (every column as text, only empty
    cells missing, as the local engine reads it); errors name the path."""
    if not path.exists():
        raise DataContractError(f"{path}: file or folder not found; check the path")
    if path.suffix.lower() == ".csv":
        return spark.read.csv(str(path), header=True, inferSchema=False, multiLine=True, escape='"')
    nanos = nanosecond_columns(path)
    if nanos:  # Spark has no nanosecond timestamps: read them as integers, then to microseconds
        spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    try:
        frame = spark.read.parquet(str(path))
    except Exception as exc:  # Spark raises AnalysisException and JVM errors alike
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataContractError(
            f"{path}: not readable as Parquet by Spark ({first}); the spark engine reads "
            "Parquet files, partitioned Parquet folders or .csv files"
        ) from None
    from pyspark.sql.functions import col, floor, timestamp_micros

    for name in nanos:
        frame = frame.withColumn(name, timestamp_micros(floor(col(name) / 1000)))
    return frame


def nanosecond_columns(path: Path) -> list[str]:
    """Columns stored as nanosecond timestamps (what pandas writes by default), from the
    Parquet schema; none when pyarrow cannot read it (Spark then says what is wrong)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        schema = ds.dataset(str(path), format="parquet").schema
    except (pa.ArrowException, OSError):
        return []
    return [
        field.name
        for field in schema
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns"
    ]


@dataclass(frozen=True)
class BucketContext:
    """What every bucket needs besides its own events: the validated deals table, the model,
    the data contract's settings, `as_of`, and the deals scored in this pass (all buckets).
    Pickled once with the function (Spark broadcasts a large one)."""

    deals: pd.DataFrame
    model: CloseModel
    data: DataConfig
    as_of: pd.Timestamp
    scored_ids: pd.Index
    market: pd.Series | None = None


def bucket_column(partitions: int) -> Any:
    """The bucket of a row's deal: a hash of the deal id as the data contract reads it (text,
    trimmed), so every event of a deal and its deal's row share one bucket."""
    from pyspark.sql.functions import col, lit, pmod, trim, xxhash64

    return pmod(xxhash64(trim(col("deal_id").cast("string"))), lit(partitions))


def bucket_features(
    raw_events: pd.DataFrame, deal_ids: pd.Series, context: BucketContext
) -> pd.DataFrame | None:
    """This bucket's events, validated as the local engine does, → `build_features` (through the
    local engine's `snapshot_features`) for `deal_ids`, this bucket's deals to score (None if
    it has none: its events are still validated)."""

    events = validate_bucket(raw_events, context.deals, context.data)
    ids = pd.Index(deal_ids.astype("str"))
    if ids.empty:
        return None
    check_bucket(events, ids, context.scored_ids)
    snapshots = pd.DataFrame({"deal_id": ids.sort_values().to_numpy(), "as_of": context.as_of})
    dataset = Dataset(context.deals, events, None)
    return snapshot_features(dataset, context.model, snapshots, threads=1, market=context.market)


def validate_bucket(
    raw_events: pd.DataFrame, deals: pd.DataFrame, data: DataConfig
) -> pd.DataFrame:
    """One bucket's interactions through the local engine's path (`dataset.check_interactions`:
    every error of the bucket in one DataContractError; its warnings stay in the worker)."""
    problems = Problems(strict=False)
    _, events = check_interactions(
        raw_events.drop(columns=["bucket"]), data, deals, problems, whole_table=False
    )
    problems.raise_errors()
    return events


def check_bucket(events: pd.DataFrame, ids: pd.Index, everywhere: pd.Index) -> None:
    """Both sides are bucketed by one hash of the same text; check that it held (no event of a
    deal featurised in this pass lies outside its deal's bucket), so that no row can ever be
    computed without some of its deal's events."""
    elsewhere = events["deal_id"].isin(everywhere) & ~events["deal_id"].isin(ids)
    if elsewhere.any():
        raise RuntimeError(
            f"bucketing error: events of deal {events.loc[elsewhere, 'deal_id'].iloc[0]!r} are "
            "not in the bucket of the deal's rows"
        )


def map_buckets(
    spark: SparkSession,
    interactions: DataFrame,
    rows: pd.DataFrame,
    partitions: int,
    compute: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame],
    schema: str,
) -> DataFrame:
    """`compute(events, rows)` once per bucket of deals, lazily: `rows` (a `deal_id` column, and
    any others) are cogrouped with the events of the same bucket, so a bucket that has rows but
    no events is still called. Run it with `run_spark`."""
    bucket = bucket_column(partitions)
    events = interactions.withColumn("bucket", bucket)
    deals = spark.createDataFrame(rows.assign(deal_id=rows["deal_id"].astype("str")))
    deals = deals.withColumn("bucket", bucket)
    return events.groupBy("bucket").cogroup(deals.groupBy("bucket")).applyInPandas(compute, schema)


@dataclass(frozen=True)
class MarketContext:
    """What every bucket needs to count its events for the market's activity level."""

    deals: pd.DataFrame
    data: DataConfig
    dates: pd.DatetimeIndex
    days: int


def market_bucket(
    raw_events: pd.DataFrame, _: pd.DataFrame, context: MarketContext
) -> pd.DataFrame:
    """Per date (by position), this bucket's events in the market window of deals open then."""
    events = validate_bucket(raw_events, context.deals, context.data)
    counts = (
        window_event_counts(context.deals, events, context.dates, context.days)
        if len(events)
        else np.zeros(len(context.dates), dtype=np.int64)
    )
    return pd.DataFrame({"position": np.arange(len(context.dates)), "events": counts})


def spark_market_levels(
    spark: SparkSession,
    interactions: DataFrame,
    deal_ids: pd.Series,
    partitions: int,
    context: MarketContext,
) -> pd.Series | None:
    """The market's activity level per date (features/market.py), from every bucket's event
    counts summed on the driver: the figure the local engine computes from all events at
    once. None when the spec has no market features."""
    if context.days <= 0:
        return None
    rows = pd.DataFrame({"deal_id": pd.Series(deal_ids).drop_duplicates().to_numpy()})
    compute = partial(market_bucket, context=context)
    schema = "position long, events long"
    buckets = map_buckets(spark, interactions, rows, partitions, compute, schema)
    counts = run_spark(buckets.toPandas).groupby("position")["events"].sum()
    events = counts.reindex(range(len(context.dates)), fill_value=0).to_numpy(dtype=np.int64)
    open_deals = open_deal_counts(context.deals, context.dates)
    return market_levels(events, open_deals, context.dates, context.days)


def run_spark(action: Callable[[], T]) -> T:
    """Run a Spark action; a closeprob error raised in a worker comes back as itself."""
    try:
        return action()
    except Exception as exc:  # a worker's error arrives wrapped in the JVM's
        raise worker_error(exc) from None


def worker_error(exc: Exception) -> Exception:
    """A closeprob error raised in a worker, as itself (its message intact, with the problem
    lines that follow it when it lists several); else `exc`."""
    lines = str(exc).splitlines()
    for number in range(len(lines) - 1, -1, -1):
        for kind in (DataContractError, CloseprobError):
            prefix = f"{kind.__module__}.{kind.__name__}: "
            if lines[number].startswith(prefix):
                listed = [lines[number].removeprefix(prefix)]
                for line in lines[number + 1 :]:
                    if not line.startswith("  - "):
                        break
                    listed.append(line)
                return kind("\n".join(listed))
    return exc


SCORE_SCHEMA = "deal_id string, p_close double, days_quiet double, stage_value double"
REASON_SCHEMA = "deal_id string, reasons_up string, reasons_down string"


def score_bucket(
    raw_events: pd.DataFrame, to_score: pd.DataFrame, context: BucketContext, chunk_rows: int
) -> pd.DataFrame:
    """deal_id, p_close, days_quiet for one bucket's deals: the local `score_features`."""

    features = bucket_features(raw_events, to_score["deal_id"], context)
    if features is None:
        return pd.DataFrame({"deal_id": [], "p_close": [], "days_quiet": [], "stage_value": []})
    return score_features(features, context.model, chunk_rows)


def explain_bucket(
    raw_events: pd.DataFrame,
    to_explain: pd.DataFrame,
    context: BucketContext,
    reasons: int,
    chunk_rows: int,
) -> pd.DataFrame:
    """deal_id, reasons_up, reasons_down for one bucket's deals: the local `explain_features`."""

    features = bucket_features(raw_events, to_explain["deal_id"], context)
    if features is None:
        return pd.DataFrame({"deal_id": [], "reasons_up": [], "reasons_down": []})
    return explain_features(features, context.model, reasons, chunk_rows)


def event_times(
    batches: Iterator[pd.DataFrame], source: str, as_of: pd.Timestamp | None, now: pd.Timestamp
) -> Iterator[pd.DataFrame]:
    """Per batch of interactions: the latest `occurred_at` not after `now` and the count at or
    after `as_of`, parsed by the data contract's own `parse_timestamps`. A bad value is left
    out here (NaT): the validation pass reports every problem, as the local engine does."""
    for batch in batches:
        ids = batch["deal_id"].astype("str")
        times = parse_timestamps(batch, "occurred_at", source, ids, Problems(strict=False))
        later = int((times >= as_of).sum()) if as_of is not None else 0
        yield pd.DataFrame({"latest": [times[times <= now].max()], "later": [later]})


def spark_as_of(
    interactions: DataFrame, deals: pd.DataFrame, as_of: pd.Timestamp | None, source: str
) -> tuple[pd.Timestamp, int]:
    """`as_of` (by default the local engine's `default_as_of`: the earlier of the wall clock
    and the data's end) and the number of interactions at or after it."""

    now = pd.Timestamp.now(tz="UTC").floor("s")
    times = partial(event_times, source=source, as_of=as_of, now=now)
    stats = (
        interactions.select("deal_id", "occurred_at")
        .mapInPandas(times, "latest timestamp, later long")
        .toPandas()
    )
    if as_of is not None:
        return as_of, int(stats["later"].sum())
    latest = pd.to_datetime(stats["latest"]).dt.tz_localize("UTC").dt.as_unit("ns")
    events = pd.DataFrame({"occurred_at": latest.dropna()})
    return default_as_of(Dataset(deals, events, None), now), 0


def build_spark_queue(
    config: Config,
    load_model: Callable[[], LoadedModel],
    as_of_text: str | None,
    previous: pd.DataFrame | None,
) -> tuple[pd.DataFrame, LoadedModel]:
    """The priority queue of the local engine (`build_queue`), computed on Spark, and the model
    that scored it (loaded once the deals are read and validated)."""

    spark = spark_session(config.spark)
    partitions = config.spark.partitions or spark.sparkContext.defaultParallelism
    data = config.data
    deals = read_deals(spark, data, named_columns(config))
    loaded = load_model()
    check_model_matches(loaded.close, deals, str(data.deals))
    interactions = read_interactions(spark, data)
    check_not_empty(interactions, deals, data, "predict")
    explicit = parse_as_of(as_of_text) if as_of_text else None
    as_of, later_events = spark_as_of(interactions, deals, explicit, str(data.interactions))
    report_later(later_events, int((deals["created_at"] >= as_of).sum()), as_of)
    to_score = open_snapshots(deals, as_of)["deal_id"]
    days = loaded.close.spec.market_window_days
    market = spark_market_levels(
        spark,
        interactions,
        to_score,
        partitions,
        MarketContext(deals, data, pd.DatetimeIndex([as_of]), days),
    )
    context = BucketContext(deals, loaded.close, data, as_of, pd.Index(to_score), market)
    chunk_rows = config.predict.chunk_rows
    score = partial(score_bucket, context=context, chunk_rows=chunk_rows)
    buckets = map_buckets(spark, interactions, to_score.to_frame(), partitions, score, SCORE_SCHEMA)
    scored = run_spark(buckets.toPandas)
    no_events = Dataset(deals, pd.DataFrame(), None)  # ranking reads the deals only
    queue = rank_queue(scored, no_events, loaded, as_of, config.ranking, previous, config.value)
    read = reason_rows(queue, config.ranking)
    if not read.any():
        return queue, loaded
    chosen = queue.loc[read, "deal_id"]
    explain = partial(
        explain_bucket,
        context=replace(context, scored_ids=pd.Index(chosen)),
        reasons=config.ranking.reasons,
        chunk_rows=chunk_rows,
    )
    buckets = map_buckets(
        spark, interactions, chosen.to_frame(), partitions, explain, REASON_SCHEMA
    )
    return with_reasons(queue, read, run_spark(buckets.toPandas)), loaded


def read_deals(
    spark: SparkSession, data: DataConfig, named: Mapping[str, tuple[str, ...]]
) -> pd.DataFrame:
    """The deals table (one row per deal) read by Spark, then checked on the driver by the
    local engine's path (`dataset.check_deals`: every error at once; warnings logged)."""
    raw = read_spark_table(spark, data.deals).toPandas()
    problems = Problems(strict=False)
    _, deals = check_deals(raw, data, named, problems)
    problems.raise_errors()
    for message in problems.warnings:
        log.warning(message)
    return deals


def read_interactions(spark: SparkSession, data: DataConfig) -> DataFrame:
    """The interactions as Spark reads them, with the export's headers that `data.columns`
    maps renamed (bucketing needs `deal_id`); each bucket maps and validates the rest."""
    from pyspark.sql.functions import col, explode_outer, split, trim

    interactions = read_spark_table(spark, data.interactions)
    for target, header in data.columns_for("interactions").items():
        if header in interactions.columns and target not in interactions.columns:
            interactions = interactions.withColumnRenamed(header, target)
    if "deal_id" in interactions.columns:  # `D1;D2`: one row per deal before bucketing by deal
        ids = explode_outer(split(col("deal_id").cast("string"), ";"))
        interactions = interactions.withColumn("deal_id", ids)
        interactions = interactions.withColumn("deal_id", trim(col("deal_id")))
    return interactions


def check_not_empty(
    interactions: DataFrame, deals: pd.DataFrame, data: DataConfig, purpose: Purpose
) -> None:
    """A header-only interactions file: the local engine's error (train) or warning."""
    if interactions.limit(1).count() > 0:
        return
    problems = Problems(strict=False)
    no_interactions(str(data.interactions), deals, data, purpose, problems)
    problems.raise_errors()
    for message in problems.warnings:
        log.warning(message)


def report_later(events: int, deals: int, as_of: pd.Timestamp) -> None:
    if events or deals:
        print(
            f"note: {events:,} interactions and {deals:,} deals dated at or after "
            f"as_of={as_of.isoformat()} are not used (features see only the past)"
        )


@dataclass(frozen=True)
class FeatureContext:
    """What every bucket needs to featurise training snapshot rows (see `BucketContext`)."""

    deals: pd.DataFrame
    spec: FeatureSpec
    data: DataConfig
    featurised_ids: pd.Index
    market: pd.Series | None = None


def feature_schema(spec: FeatureSpec) -> str:
    """The training table's Spark schema: ids, as_of, then the features in registry order."""
    categorical = set(categorical_features(spec))
    columns = [
        f"`{name}` {'string' if name in categorical else 'double'}"
        for name in feature_descriptions(spec)
    ]
    return ", ".join(["deal_id string", "as_of timestamp", *columns])


def features_bucket(
    raw_events: pd.DataFrame, rows: pd.DataFrame, context: FeatureContext
) -> pd.DataFrame:
    """`build_features` for one bucket's snapshot rows, from its validated events."""
    events = validate_bucket(raw_events, context.deals, context.data)
    snapshots = pd.DataFrame(
        {
            "deal_id": rows["deal_id"].astype("str").to_numpy(),
            "as_of": pd.to_datetime(rows["as_of"]).dt.tz_localize("UTC").dt.as_unit("ns"),
        }
    )
    if snapshots.empty:
        return pd.DataFrame(columns=["deal_id", "as_of", *feature_descriptions(context.spec)])
    check_bucket(events, pd.Index(snapshots["deal_id"].unique()), context.featurised_ids)
    return build_features(
        context.deals, events, snapshots, context.spec, threads=1, market=context.market
    )


def spark_feature_builder(config: Config) -> FeatureBuilder:
    """A `build_features` that computes the training table on Spark, from the interactions
    file or folder of `config.data` (read by Spark: the pandas frame it is passed is not used),
    writes it as Parquet to `config.spark.training_features` and returns it in the rows'
    order, as `build_features` does."""

    def build(
        deals: pd.DataFrame, _: pd.DataFrame, snapshots: pd.DataFrame, spec: FeatureSpec
    ) -> pd.DataFrame:
        check_replaceable(config.spark.training_features)  # before any work
        spark = spark_session(config.spark)
        partitions = config.spark.partitions or spark.sparkContext.defaultParallelism
        data = config.data
        interactions = read_interactions(spark, data)
        check_not_empty(interactions, deals, data, "train")
        dates = pd.DatetimeIndex(snapshots["as_of"].unique()).sort_values()
        days = spec.market_window_days
        market = spark_market_levels(
            spark,
            interactions,
            snapshots["deal_id"],
            partitions,
            MarketContext(deals, data, dates, days),
        )
        ids = pd.Index(snapshots["deal_id"].unique())
        context = FeatureContext(deals, spec, data, ids, market)
        rows = snapshots[["deal_id", "as_of"]]
        table = map_buckets(
            spark,
            interactions,
            rows,
            partitions,
            partial(features_bucket, context=context),
            feature_schema(spec),
        )
        out = config.spark.training_features
        run_spark(lambda: write_folder_atomic(table, out))
        return in_row_order(pd.read_parquet(out), snapshots)

    return build


FEATURE_TABLE_MARK = "_CLOSEPROB_FEATURES"


def is_spark_output(name: str) -> bool:
    """A file Spark's Parquet writer (or closeprob's mark) puts in an output folder."""
    return name.startswith(("part-", "_SUCCESS", "._SUCCESS", FEATURE_TABLE_MARK)) or (
        name.startswith(".part-") and name.endswith(".crc")
    )


def check_replaceable(out: Path) -> None:
    """`out` may be replaced only if it is absent or an earlier feature table (Spark's Parquet
    parts and closeprob's mark, nothing else): never a user's folder or file."""
    if not out.exists():
        return
    strangers = (
        [] if not out.is_dir() else [p.name for p in out.iterdir() if not is_spark_output(p.name)]
    )
    if out.is_dir() and not strangers:
        return
    what = f"holds {strangers[:3]}" if out.is_dir() else "is a file"
    raise CloseprobError(
        f"{out}: spark.training_features exists and {what}, so it is not a feature table "
        "closeprob wrote; it is never replaced. Choose another spark.training_features"
    )


def write_folder_atomic(table: DataFrame, out: Path) -> None:
    """Spark writes a folder of Parquet parts: write it beside `out`, then swap it in, so a
    failed run leaves an earlier table whole. Only an earlier feature table is replaced."""
    check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.parent / f".{out.name}.{uuid.uuid4().hex}.tmp"
    try:
        table.write.parquet(str(temporary))
        (temporary / FEATURE_TABLE_MARK).write_text("closeprob training feature table\n")
        if out.exists():
            old = out.parent / f".{out.name}.{uuid.uuid4().hex}.old"
            out.rename(old)
            temporary.rename(out)
            shutil.rmtree(old)
        else:
            temporary.rename(out)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def in_row_order(features: pd.DataFrame, snapshots: pd.DataFrame) -> pd.DataFrame:
    """The table read back, one row per snapshot row in the snapshots' order and index."""
    features = features.assign(
        as_of=pd.to_datetime(features["as_of"], utc=True).dt.as_unit("ns"),
        deal_id=features["deal_id"].astype("str"),
    )
    keys = pd.MultiIndex.from_frame(snapshots[["deal_id", "as_of"]].astype({"deal_id": "str"}))
    positions = pd.MultiIndex.from_frame(features[["deal_id", "as_of"]]).get_indexer(keys)
    if len(features) != len(snapshots) or (positions < 0).any():
        raise RuntimeError(
            f"the Spark feature table has {len(features):,} rows for {len(snapshots):,} "
            f"snapshot rows ({int((positions < 0).sum()):,} missing)"
        )
    ordered = features.drop(columns=["deal_id", "as_of"]).iloc[positions].reset_index(drop=True)
    # Categorical features are plain objects with NaN for missing, as `build_features` gives.
    text = [c for c in ordered.columns if not pd.api.types.is_numeric_dtype(ordered[c])]
    ordered[text] = ordered[text].astype(object).where(ordered[text].notna())
    ordered.insert(0, "as_of", snapshots["as_of"].array)
    ordered.insert(0, "deal_id", snapshots["deal_id"].array)
    return ordered.set_axis(snapshots.index)
