"""The training feature table Spark writes (`spark.training_features`): a folder of Parquet
parts, written beside its place and swapped in (never replacing anything but an earlier
table), and read back in the snapshot rows' order."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from closeprob.pipeline.errors import CloseprobError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

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
