"""The `check` job: every data-contract rule on both files at once, then a summary of what the
data hold against what training needs. `train` and `predict` run the same rules first
(`dataset.load_dataset`); `check` lists every problem and writes nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from closeprob.features.attributes import normalise_levels
from closeprob.features.spec import slug
from closeprob.models.classifier import CloseModel, known_levels
from closeprob.pipeline.amounts import describe_outliers, outlier_amounts
from closeprob.pipeline.config import Config, named_columns
from closeprob.pipeline.dataset import (
    Inspection,
    Purpose,
    configured_from,
    inspect_dataset,
    rows_after,
)
from closeprob.pipeline.errors import CloseprobError, DataContractError, ModelNotFoundError
from closeprob.pipeline.leaks import leak_messages
from closeprob.pipeline.registry import load_registered_model, registry_version
from closeprob.pipeline.runs import tracking_uri
from closeprob.pipeline.scoring import default_as_of
from closeprob.pipeline.training import MIN_OUTCOMES, check_outcomes
from closeprob.pipeline.validate import (
    DEAL_COLUMNS,
    DEAL_OPTIONAL,
    INTERACTION_COLUMNS,
    INTERACTION_OPTIONAL,
    OPTIONAL_ROLES,
    Problems,
    optional_near_misses,
)

log = logging.getLogger(__name__)


def run_check(config: Config, purpose: Purpose) -> None:
    """Print every problem and the summary; a DataContractError (exit 2) if any is an error."""
    problems = Problems(strict=False)
    inspection = inspect_dataset(config.data, problems, named_columns(config), purpose)
    lines = summary_lines(inspection, config, purpose, problems)
    log.info(
        f"Checked {config.data.deals} and {config.data.interactions} "
        f"(name {config.name!r}, for {purpose})"
    )
    _print_problems(problems)
    log.info("\nSummary:")
    for label, text in lines:
        log.info(f"  {label:<21}{text}")
    if problems.errors:
        raise DataContractError(
            f"check found {len(problems.errors)} error{'s' * (len(problems.errors) != 1)} "
            "(listed above); fix them and run check again"
        )
    log.info(f"\nno errors: ready to {purpose}")


def _print_problems(problems: Problems) -> None:
    errors, warnings = problems.errors, problems.warnings
    if not (errors or warnings):
        log.info("\nNo problems found.")
        return
    log.info(f"\nProblems ({len(errors)} errors, {len(warnings)} warnings):")
    for message in errors:
        log.info(f"  error: {message}")
    for message in warnings:
        log.info(f"  warning: {message}")


def summary_lines(
    inspection: Inspection, config: Config, purpose: Purpose, problems: Problems
) -> list[tuple[str, str]]:
    """(label, text) rows of the summary; outcome minimums and amount outliers also go into
    `problems` (an error at train, a warning otherwise)."""
    lines: list[tuple[str, str]] = []
    deals, events = inspection.deals, inspection.interactions
    if deals is not None:
        lines += _deal_lines(deals, config, purpose, problems)
    if events is not None:
        from closeprob.pipeline.plausibility import missing_stage_type

        no_stages = missing_stage_type(events, config.features.stage_event_type)
        if no_stages is not None:
            problems.warn(f"{config.data.interactions}: {no_stages}")
        lines.append(("interactions", f"{len(events):,} rows{_span(events['occurred_at'])}"))
        raw = inspection.interactions_raw
        repeated = int(raw.duplicated().sum()) if raw is not None else 0
        lines.append(
            (
                "duplicate events",
                f"{repeated:,} rows repeat an earlier row in every column "
                f"(data.duplicate_interactions: {config.data.duplicate_interactions})",
            )
        )
    lines += _column_lines(inspection, config)
    if inspection.dataset is not None:
        lines += _now_lines(inspection, config)
        champion = _champion_line(inspection.dataset.deals, config, purpose, problems)
        lines.append(("champion", champion))
    return lines


def _span(times: pd.Series) -> str:
    times = times.dropna()
    if times.empty:
        return ""
    return f", {times.min():%Y-%m-%d} … {times.max():%Y-%m-%d}"


def _deal_lines(
    deals: pd.DataFrame, config: Config, purpose: Purpose, problems: Problems
) -> list[tuple[str, str]]:

    won = int((deals["outcome"] == "won").sum())
    lost = int((deals["outcome"] == "lost").sum())
    still_open = int(deals["closed_at"].isna().sum())
    enough = won >= MIN_OUTCOMES and lost >= MIN_OUTCOMES
    readable = deals["closed_at"].notna().any() or deals["outcome"].notna().any()
    if purpose == "train" and not enough and readable:
        try:
            check_outcomes(deals, str(config.data.deals))
        except CloseprobError as exc:
            problems.error(str(exc))
    amount = deals["amount"]
    multiple, segment = config.data.amount_outlier_multiple, config.value.segment
    flagged = outlier_amounts(deals, segment, multiple)
    outliers = describe_outliers(flagged, multiple, segment)
    if outliers:
        problems.warn(f"{config.data.deals}: {outliers}")
    _leaky_columns(deals, config, purpose, problems)
    return [
        ("deals", f"{len(deals):,} rows{_span(deals['created_at'])} (created_at)"),
        (
            "outcomes",
            f"won {won:,}, lost {lost:,}, open {still_open:,}; training needs at least "
            f"{MIN_OUTCOMES} won and {MIN_OUTCOMES} lost: {'ok' if enough else 'TOO FEW'}",
        ),
        (
            "deal values",
            f"amount on {int(amount.notna().sum()):,} of {len(deals):,} deals "
            f"({_share(amount.notna())})"
            + (f"; {len(flagged)} far above their segment's median (warned)" if outliers else ""),
        ),
    ]


def _leaky_columns(
    deals: pd.DataFrame, config: Config, purpose: Purpose, problems: Problems
) -> None:
    """Input columns that tell open deals from closed ones: an error for train (it refuses
    them), a warning for predict (the champion was trained already)."""

    keys = tuple(k for k in config.features.history_keys if k in deals.columns)
    columns = (*config.data.attributes, *keys)
    allowed = config.data.allow_suspect_columns
    for message in leak_messages(deals, columns, allowed, str(config.data.deals)):
        (problems.error if purpose == "train" else problems.warn)(message)


def _share(flags: pd.Series) -> str:
    return f"{flags.mean():.0%}" if len(flags) else "–"


def _column_lines(inspection: Inspection, config: Config) -> list[tuple[str, str]]:
    """Columns used, unused and near misses per table; attributes found and their coverage."""
    configured = {name: "data.attributes" for name in config.data.attributes}
    configured |= configured_from(named_columns(config))
    tables = (
        (
            "deals",
            inspection.deals_raw,
            (*DEAL_COLUMNS, *DEAL_OPTIONAL, *configured),
            DEAL_OPTIONAL,
        ),
        (
            "interactions",
            inspection.interactions_raw,
            (*INTERACTION_COLUMNS, *INTERACTION_OPTIONAL),
            INTERACTION_OPTIONAL,
        ),
    )
    lines = []
    for name, raw, expected, optional in tables:
        if raw is None:
            continue
        used = [str(c) for c in raw.columns if c in expected]
        unused = [str(c) for c in raw.columns if c not in expected]
        lines.append((f"{name} columns", f"used {used}; unused {unused}"))
        for column, header in optional_near_misses(raw, optional, expected).items():
            role = OPTIONAL_ROLES.get(column, ("", ()))[0]
            lines.append(
                (
                    "near miss",
                    f"no {column!r} ({role}); is it {header!r}? map it: "
                    f"data.columns: {{{column}: {header!r}}}",
                )
            )
    if inspection.deals is not None:
        lines += _attribute_lines(inspection.deals, config)
    return lines


def _attribute_lines(deals: pd.DataFrame, config: Config) -> list[tuple[str, str]]:
    found = [a for a in config.data.attributes if a in deals.columns]
    missing = [a for a in config.data.attributes if a not in deals.columns]
    described = [
        f"{a} ({_share(deals[a].notna())} filled, {normalise_levels(deals[a]).nunique()} levels"
        f" in {deals[a].nunique()} spellings)"
        for a in found
    ]
    text = ", ".join(described) or "none"
    if missing:
        text += f"; missing {missing} (data.attributes)"
    return [("attributes", text)]


def _now_lines(inspection: Inspection, config: Config) -> list[tuple[str, str]]:

    dataset = inspection.dataset
    assert dataset is not None
    now = pd.Timestamp.now(tz="UTC").floor("s")
    as_of = default_as_of(dataset, now)
    later = rows_after(dataset, as_of)
    return [
        (
            "now",
            f"default as_of {as_of.isoformat()} (the earlier of the wall clock and the data's "
            f"end); after it, ignored: {later or 'nothing'}",
        )
    ]


def _champion_line(
    deals: pd.DataFrame, config: Config, purpose: Purpose, problems: Problems
) -> str:
    """The share of attribute values the registered champion never saw in training; a
    champion that exists but cannot be loaded (files gone or changed, an earlier release's
    pickle) is a problem: an error for predict, which would stop on it (exit 2), a warning
    for train, which promotes a healthy new model over it."""

    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return f"no model registry at {uri} yet"
    try:
        model = load_registered_model(config.model_uri).close
    except ModelNotFoundError as exc:
        version = _registered_version(config.model_uri)
        if version is None:
            return f"no champion {config.model_uri} yet"
        message = f"champion {config.model_uri} (version {version}) cannot be loaded: {exc}"
        if purpose == "predict":
            problems.error(f"{message} (predict stops on it, exit 2)")
        else:
            problems.warn(f"{message} (train will promote a healthy new model over it)")
        return f"{config.model_uri}: version {version} exists but cannot be loaded (see above)"
    return _unseen_levels(deals, config, model)


def _registered_version(uri: str) -> str | None:
    """The version `uri` names in the registry; None when there is none (no such alias)."""
    try:
        return registry_version(uri)[0]
    except ModelNotFoundError:
        return None


def _unseen_levels(deals: pd.DataFrame, config: Config, model: CloseModel) -> str:
    """The share of attribute values the champion never saw in training."""
    parts, unseen_total, present_total = [], 0, 0
    for attribute in model.spec.attributes:
        levels = model.categories.get(f"attr_{slug(attribute)}")
        if levels is None or attribute not in deals.columns:
            continue
        present = deals[attribute].notna()
        unseen = present & known_levels(deals[attribute], levels).isna()
        unseen_total, present_total = (
            unseen_total + int(unseen.sum()),
            present_total + int(present.sum()),
        )
        parts.append(f"{attribute} {_share(unseen[present])}")
    if not parts:
        return f"{config.model_uri}: no attributes to compare"
    share = unseen_total / present_total if present_total else 0.0
    return (
        f"{config.model_uri}: {share:.0%} of attribute values unseen in its training "
        f"({', '.join(parts)}); unseen levels score as missing"
    )
