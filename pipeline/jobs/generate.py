"""The `generate` and `import` jobs (the built-in synthetic CRM; a public data set through its
adapter), and `ensure_data`, which runs one of them when the configured data are missing."""

from __future__ import annotations

import logging
from pathlib import Path

from closeprob.pipeline.adapters import run_adapter, source_folder
from closeprob.pipeline.adapters.crm_export import write_config
from closeprob.pipeline.config import Config
from closeprob.pipeline.io import OutputError, write_table
from closeprob.pipeline.synthetic import generate_crm

log = logging.getLogger(__name__)


def run_generate(config: Config, out: Path | None, force: bool = False) -> None:
    """The `generate` job: the built-in synthetic CRM. Existing files are replaced only with
    `force` (they may be a user's own data)."""

    settings = config.generate
    crm = generate_crm(
        settings.n_deals, settings.n_interactions, settings.start, settings.days, config.seed
    )
    folder = out
    targets = {
        "deals": folder / "deals.csv" if folder else config.data.deals,
        "interactions": folder / "interactions.csv" if folder else config.data.interactions,
        "truth": folder / "truth.csv" if folder else (config.data.truth or Path("data/truth.csv")),
    }
    existing = [str(path) for path in targets.values() if path.exists()]
    if existing and not force:
        raise OutputError(
            f"{', '.join(existing)}: already exist{'s' if len(existing) == 1 else ''}; "
            "`generate` would overwrite them with synthetic data. Pass --force (make generate "
            "FORCE=1) to replace them, or --out another folder"
        )
    write_table(crm.deals, targets["deals"])
    write_table(crm.interactions, targets["interactions"])
    write_table(crm.truth, targets["truth"])
    still_open = int(crm.deals["closed_at"].isna().sum())
    log.info(
        f"generated {len(crm.deals):,} deals ({still_open:,} open at the end) "
        f"and {len(crm.interactions):,} interactions "
        f"from {settings.start} over {settings.days} days "
        f"(seed {config.seed}) -> {targets['deals']}, {targets['interactions']}, {targets['truth']}"
    )


def run_import(name: str, source: Path | None, out: Path | None) -> tuple[Path, Path]:
    source = source or source_folder(name)
    adapted = run_adapter(name, source)
    folder = out or Path("data") / name
    deals_path, interactions_path = folder / "deals.parquet", folder / "interactions.parquet"
    write_table(adapted.deals, deals_path)
    write_table(adapted.interactions, interactions_path)
    log.info(
        f"imported {name}: {len(adapted.deals):,} deals, {len(adapted.interactions):,} "
        f"interactions -> {deals_path}, {interactions_path}"
    )
    if adapted.settings is not None:
        written = write_config(
            folder, name, source, adapted.settings, deals_path, interactions_path
        )
        log.info(f"  config: {written} (closeprob check|train|predict --config {written})")
    for note in adapted.notes:
        log.info(f"  note: {note}")
    return deals_path, interactions_path


def import_fresh_export(config: Config) -> bool:
    """With data.adapter and data.source (a team's CRM export, the nightly case): import the
    export again into the deals table's folder, and say so."""
    data = config.data
    if data.adapter is None or data.source is None:
        return False
    log.info(f"importing {data.adapter} from {data.source}")
    run_import(data.adapter, data.source, data.deals.parent)
    return True


def ensure_data(config: Config) -> None:
    """Generate the built-in CRM, or import the configured public data set, when missing."""
    if import_fresh_export(config):
        return
    if config.data.deals.exists():
        return
    if config.data.adapter is not None:
        log.info(f"{config.data.deals} not found: importing {config.data.adapter} first")
        run_import(config.data.adapter, None, config.data.deals.parent)
    elif config.data.truth is not None:
        log.info(f"{config.data.deals} not found: generating the built-in synthetic CRM first")
        run_generate(config, None)
