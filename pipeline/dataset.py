"""Where the data come from: the two input tables named by the config's `data:` section, read
and validated; the built-in synthetic CRM (`generate` job); public data sets (`import` job)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from closeprob.pipeline.config import Config, DataConfig
from closeprob.pipeline.io import read_table, write_table
from closeprob.pipeline.validate import validate_deals, validate_interactions


@dataclass(frozen=True)
class Dataset:
    deals: pd.DataFrame
    interactions: pd.DataFrame
    truth: pd.DataFrame | None


def load_dataset(data: DataConfig) -> Dataset:
    """Deals and interactions checked against the data contract; the generator's truth if any."""
    deals = validate_deals(read_table(data.deals), str(data.deals), data.attributes)
    interactions = validate_interactions(
        read_table(data.interactions),
        str(data.interactions),
        deals["deal_id"],
        data.unknown_deal_interactions,
    )
    truth = _read_truth(data.truth) if data.truth is not None else None
    return Dataset(deals=deals, interactions=interactions, truth=truth)


def _read_truth(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    truth = read_table(path)
    numeric = [c for c in truth.columns if c != "deal_id"]
    return truth.astype({c: float for c in numeric})


def run_generate(config: Config, out: Path | None) -> None:
    from closeprob.pipeline.synthetic import generate_crm

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
    write_table(crm.deals, targets["deals"])
    write_table(crm.interactions, targets["interactions"])
    write_table(crm.truth, targets["truth"])
    still_open = int(crm.deals["closed_at"].isna().sum())
    print(
        f"generated {len(crm.deals):,} deals ({still_open:,} open at the end) "
        f"and {len(crm.interactions):,} interactions "
        f"from {settings.start} over {settings.days} days "
        f"(seed {config.seed}) -> {targets['deals']}, {targets['interactions']}, {targets['truth']}"
    )


def run_import(name: str, source: Path | None, out: Path | None) -> tuple[Path, Path]:
    from closeprob.pipeline.adapters import run_adapter, source_folder

    adapted = run_adapter(name, source or source_folder(name))
    folder = out or Path("data") / name
    deals_path, interactions_path = folder / "deals.parquet", folder / "interactions.parquet"
    write_table(adapted.deals, deals_path)
    write_table(adapted.interactions, interactions_path)
    print(
        f"imported {name}: {len(adapted.deals):,} deals, {len(adapted.interactions):,} "
        f"interactions -> {deals_path}, {interactions_path}"
    )
    for note in adapted.notes:
        print(f"  note: {note}")
    return deals_path, interactions_path


def ensure_data(config: Config) -> None:
    """Generate the built-in CRM, or import the configured public data set, when missing."""
    if config.data.deals.exists():
        return
    if config.data.adapter is not None:
        print(f"{config.data.deals} not found: importing {config.data.adapter} first")
        run_import(config.data.adapter, None, config.data.deals.parent)
    elif config.data.truth is not None:
        print(f"{config.data.deals} not found: generating the built-in synthetic CRM first")
        run_generate(config, None)
