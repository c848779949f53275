"""The `promote` job: a version made champion by hand, or the champion rolled back."""

from __future__ import annotations

import logging

from closeprob.pipeline.champion import promote_version, rollback_champion
from closeprob.pipeline.config import Config

log = logging.getLogger(__name__)


def run_promote(config: Config, version: str | None, rollback: bool) -> None:
    """The `promote` job: champion by hand, or back to the previous one."""
    name = config.registered_model
    if rollback:
        current, previous = rollback_champion(name)
        log.info(f"{name}: champion rolled back from version {current} to {previous}")
    elif version is not None:
        new, before = promote_version(name, version)
        was = "none" if before is None else f"version {before}"
        log.info(f"{name}: champion is now version {new} (was {was})")
