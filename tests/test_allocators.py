"""Importing closeprob chooses the allocators of large arrays (closeprob/__init__.py): Arrow's
jemalloc pool and numpy without transparent huge pages on Linux, unless the user chose."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="closeprob chooses allocators on Linux only"
)
PROBE = (
    "import closeprob, numpy, pyarrow; "
    "print(pyarrow.default_memory_pool().backend_name, "
    "numpy._core.multiarray._get_madvise_hugepage())"
)


def _probe(code: str, **variables: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in _VARIABLES} | variables
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stderr == ""
    return done.stdout.split()


_VARIABLES = ("ARROW_DEFAULT_MEMORY_POOL", "NUMPY_MADVISE_HUGEPAGE")


def test_importing_closeprob_first_chooses_jemalloc_and_no_huge_pages() -> None:
    assert _probe(PROBE) == ["jemalloc", "False"]


def test_arrow_imported_before_closeprob_still_gets_jemalloc() -> None:
    assert _probe("import pyarrow; " + PROBE)[0] == "jemalloc"


def test_the_users_own_choice_wins() -> None:
    chosen = _probe(PROBE, ARROW_DEFAULT_MEMORY_POOL="system", NUMPY_MADVISE_HUGEPAGE="1")
    assert chosen == ["system", "True"]
