"""closeprob: calibrated close probabilities and a value-weighted priority queue from CRM logs.

One installed namespace over the repository's design folders: `closeprob.features`
(features/), `closeprob.models` (models/) and `closeprob.pipeline` (pipeline/), mapped by
setuptools' `package-dir` in pyproject.toml, so nothing generic lands in site-packages.

Importing it chooses the allocators of the large arrays (`_allocators`), before numpy and
Arrow allocate anything where it is imported first (the `closeprob` command).
"""

import contextlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("closeprob")
except PackageNotFoundError:  # run from a source tree that was not installed
    __version__ = "0+unknown"


def _allocators() -> None:
    """On Linux: Arrow's jemalloc pool instead of its default mimalloc, and numpy's large
    arrays without transparent huge pages (`NUMPY_MADVISE_HUGEPAGE=0`). Measured at 10 M
    interactions (`bench/feature_threads.py`, one thread), both cut the kernel's share of the
    CPU time (faulting in fresh pages): reading 1.9-4.7 -> 0.4 s of system CPU, the feature build
    4.3-6.0 -> 1.7-2.0 s, and the peak RSS by about 150 MiB. A variable the user set wins;
    numpy reads its own only if imported after closeprob."""
    if not sys.platform.startswith("linux"):
        return
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "jemalloc"
    if "pyarrow" in sys.modules:  # imported first: its default pool may already be chosen
        import pyarrow as pa

        with contextlib.suppress(NotImplementedError):  # a build without jemalloc: its default
            pa.set_memory_pool(pa.jemalloc_memory_pool())


_allocators()
