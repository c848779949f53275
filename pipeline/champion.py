"""Who is champion, and who was before: the train job's publication, `promote --version N` and
`promote --rollback`.

The history of champions is one tag on the registered model, `champion_history` (a JSON list
of version numbers, oldest first, the current champion last). A promotion writes the longer
history, then moves the alias; a rollback moves the alias back, then writes the shorter
history. A kill between the two writes is read correctly: the history is cut after the last
time it names the current champion (or the champion is appended when it is not named), so
rollback always goes to the champion before the current one, and after champions 1 → 2 → 3,
rollback twice gives 2, then 1.
"""

from __future__ import annotations

import json
import logging

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from closeprob.pipeline.challenge import Challenge
from closeprob.pipeline.errors import CloseprobError, ModelNotFoundError
from closeprob.pipeline.registry import (
    CHALLENGER,
    CHAMPION,
    LoggedModel,
    alias_versions,
    describe_version,
    load_registered_model,
    parse_version,
    register_logged,
)
from closeprob.pipeline.store import registry_writes, tracking_uri

log = logging.getLogger(__name__)

HISTORY_TAG = "champion_history"
PREVIOUS_CHAMPION_TAG = "previous_champion"  # where closeprob 0.1 and 0.2 kept one step back
MAX_HISTORY = 500  # versions kept in the tag (far below the registry's tag length limit)


def champion_history(name: str, current: int | None) -> list[int]:
    """The champions of `name` so far, oldest first, ending with `current` (the alias)."""
    if current is None:
        return []
    client = MlflowClient()
    recorded = client.get_registered_model(name).tags.get(HISTORY_TAG)
    if recorded is None:
        history = _history_before_the_tag(client, name, current)
    else:
        history = [int(v) for v in json.loads(recorded)]
    if current in history:
        last = len(history) - 1 - history[::-1].index(current)
        return history[: last + 1]
    return [*history, current]


def _history_before_the_tag(client: MlflowClient, name: str, current: int) -> list[int]:
    """A registry written by closeprob 0.2 (a `previous_champion` tag on each champion's
    version) or 0.1 (one on the registered model): the chain of those, without loops."""
    chain = [current]
    while True:
        tags = client.get_model_version(name, str(chain[0])).tags
        previous = tags.get(PREVIOUS_CHAMPION_TAG)
        if previous is None and len(chain) == 1:
            previous = client.get_registered_model(name).tags.get(PREVIOUS_CHAMPION_TAG)
        if previous is None or not previous.isdigit() or int(previous) in chain:
            return chain
        chain.insert(0, int(previous))


def _write_history(name: str, history: list[int]) -> None:
    MlflowClient().set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-MAX_HISTORY:]))


def _champion(name: str) -> int | None:
    current = alias_versions(name).get(CHAMPION)
    return None if current is None else int(current)


def set_champion(name: str, version: int) -> int | None:
    """Point `champion` at `version`, the history written first; the champion it replaces."""
    current = _champion(name)
    if current == version:
        return current
    _write_history(name, [*champion_history(name, current), version])
    set_alias(name, CHAMPION, str(version))
    return current


# How a database refuses a second insert of the same alias (SQLite, PostgreSQL, MySQL).
DUPLICATE_ALIAS = ("UNIQUE constraint failed", "duplicate key value", "Duplicate entry")


def set_alias(name: str, alias: str, version: str) -> None:
    """Point `alias` at `version`. MLflow reads, then inserts: a job that lost the race with
    another job setting the same new alias finds it there on a second try and moves it."""
    try:
        MlflowClient().set_registered_model_alias(name, alias, version)
    except MlflowException as exc:
        if not any(text in str(exc) for text in DUPLICATE_ALIAS):
            raise
        log.info(
            "alias %r of %r was set by another job at the same time; setting it again", alias, name
        )
        MlflowClient().set_registered_model_alias(name, alias, version)


def publish_version(
    logged: LoggedModel,
    name: str,
    challenge: Challenge,
    notes: tuple[str, dict[str, str]] | None = None,
) -> str:
    """The train job's only registry writes, made once everything that can fail has been
    computed: register the logged model as a new version of `name` (with its checksums, and
    its `notes`: description and tags), make it `challenger`, and `champion` when the rule
    promoted it. Any kill between two writes leaves aliases that point at whole versions and
    a champion history that rolls back correctly."""
    with registry_writes():
        version = register_logged(logged, name)
        if notes is not None:
            describe_version(name, version, *notes)
        set_alias(name, CHALLENGER, version)
        if challenge.decision.promote:
            set_champion(name, int(version))
    return version


def check_loadable(name: str, version: int, role: str) -> None:
    """The version exists and loads (files present, checksums match, native format), or an
    error that says why and that the champion did not move."""
    try:
        MlflowClient().get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise CloseprobError(f"registered model {name!r} has no version {version}") from None
    try:
        load_registered_model(f"models:/{name}/{version}")
    except ModelNotFoundError as exc:
        raise CloseprobError(
            f"{role} version {version} of {name!r} cannot be loaded, so the champion did not "
            f"move: {exc}"
        ) from None


def promote_version(name: str, text: str) -> tuple[int, int | None]:
    """`champion` → version `text` ('2', '02'), once it loads; (new, previous)."""
    mlflow.set_tracking_uri(tracking_uri())
    version = parse_version(text)
    check_loadable(name, version, "version")
    with registry_writes():
        return version, set_champion(name, version)


def rollback_champion(name: str) -> tuple[int, int]:
    """`champion` → the champion before the current one, once it loads; (from, to)."""
    mlflow.set_tracking_uri(tracking_uri())
    if not alias_versions(name) and not _exists(name):
        raise CloseprobError(f"registered model {name!r} not found; run `make train` first")
    current = _champion(name)
    if current is None:
        raise CloseprobError(f"{name!r} has no champion to roll back from")
    history = champion_history(name, current)
    if len(history) < 2:
        raise CloseprobError(
            f"{name!r}: version {current} is the first champion on record; there is no "
            "earlier champion to roll back to (promote a version by number: "
            "`closeprob promote --version N`)"
        )
    previous = history[-2]
    check_loadable(name, previous, "the previous champion,")
    with registry_writes():
        set_alias(name, CHAMPION, str(previous))
        _write_history(name, history[:-1])
    return current, previous


def _exists(name: str) -> bool:
    try:
        MlflowClient().get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True
