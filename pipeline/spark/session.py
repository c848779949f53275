"""The SparkSession the engine runs on: Java and pyspark present (else how to install them),
UTC times, and pyspark's pandas-3 warning hidden in the driver and the workers."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from closeprob.pipeline.config import SparkConfig
from closeprob.pipeline.errors import CloseprobError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# pyspark 4.3 warns on every Arrow conversion (thousands per run) that pandas 3 is "not fully
# supported"; the paths used here are covered by the parity tests. Only that warning is hidden,
# in the driver (filter) and in the Python workers (PYTHONWARNINGS, inherited from the driver).
PANDAS3_WARNING = "PySpark does not yet fully support pandas"
INSTALL_JAVA = (
    "install a Java 17 runtime (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`; "
    "macOS: `brew install openjdk@17`) or point JAVA_HOME at one, or use --engine local"
)


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
