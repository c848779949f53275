"""Errors a user can act on. The CLI prints them and exits non-zero; nothing is written."""


class CloseprobError(ValueError):
    """Base of every user-facing error (a ValueError, as scikit-learn does)."""


class ConfigError(CloseprobError):
    """The configuration file is missing, malformed or has an unknown key or a wrong type."""


class DataContractError(CloseprobError):
    """An input file breaks the data contract (README, "Data contract")."""


class TrainingDataError(CloseprobError):
    """The data are valid but cannot support training (too few outcomes, one class only)."""


class ModelNotFoundError(CloseprobError):
    """The model URI does not resolve to a closeprob model in the tracking store."""


DRIFT_EXIT_CODE = 3


class DriftDetected(Exception):  # noqa: N818 (a finding, not an error of the user's)
    """`predict --fail-on-drift` found drift; the queue was written and the warning said."""


class RetryableError(CloseprobError):
    """A temporary failure (a database, the tracking store or a lock is unavailable): the CLI
    exits 75 (EX_TEMPFAIL), so a scheduler may retry later; nothing was written."""
