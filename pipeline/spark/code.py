"""closeprob's own code shipped to the Spark workers, so a worker needs only the model's
requirements (its `requirements.txt`: closeprob's dependencies, pinned), not an installed
closeprob.

The code shipped is the tree `registry.closeprob_code` builds, the one `log_model` puts in a
model's `code_paths`: byte for byte a model's own code when this closeprob logged it. It is the
running closeprob's, never code read from a model folder: closeprob runs no code from an
artifact, and the workers then compute what the driver validates and ranks with.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from closeprob.pipeline.registry import closeprob_code

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SHIPPED: dict[str, str] = {}  # application id -> name of the zip added to that SparkContext


def code_zip(root: Path, folder: Path) -> Path:
    """The `closeprob/` tree at `root` as a zip in `folder`, named by a hash of its files (the
    same code, the same name: Spark refuses one name added twice with other bytes)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    target = folder / f"closeprob-code-{digest.hexdigest()[:16]}.zip"
    if not target.exists():
        partial = target.with_suffix(".part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(root.parent).as_posix())
        partial.rename(target)
    return target


def ship_closeprob_code(spark: SparkSession) -> str:
    """Add closeprob's code to the session's Python path on every worker (once per session);
    the zip's name. Workers put it before their site-packages, so it is the code they run."""
    context = spark.sparkContext
    application = str(context.applicationId)
    if application in SHIPPED:
        return SHIPPED[application]
    from pyspark import SparkFiles

    folder = Path(SparkFiles.getRootDirectory()) / "closeprob-code"  # removed with the session
    folder.mkdir(parents=True, exist_ok=True)
    with closeprob_code() as root:
        archive = code_zip(root, folder)
    context.addPyFile(str(archive))
    SHIPPED[application] = archive.name
    return archive.name
