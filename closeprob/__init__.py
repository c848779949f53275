"""closeprob: calibrated close probabilities and a value-weighted priority queue from CRM logs.

One installed namespace over the repository's design folders: `closeprob.features`
(features/), `closeprob.models` (models/) and `closeprob.pipeline` (pipeline/), mapped by
setuptools' `package-dir` in pyproject.toml, so nothing generic lands in site-packages.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("closeprob")
except PackageNotFoundError:  # run from a source tree that was not installed
    __version__ = "0+unknown"
