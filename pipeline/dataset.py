"""Where the data come from: the two input tables named by the config's `data:` section, read
and validated; the built-in synthetic CRM (`generate` job); public data sets (`import` job)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from closeprob.pipeline.config import Config, DataConfig
from closeprob.pipeline.errors import ConfigError
from closeprob.pipeline.io import read_table, write_table
from closeprob.pipeline.validate import validate_deals, validate_interactions


@dataclass(frozen=True)
class Dataset:
    deals: pd.DataFrame
    interactions: pd.DataFrame
    truth: pd.DataFrame | None


def load_dataset(
    data: DataConfig, named_columns: Mapping[str, tuple[str, ...]] | None = None
) -> Dataset:
    """Deals and interactions checked against the data contract; the generator's truth if any.

    `named_columns` (config key → deal columns, `config.named_columns`) are checked first, so
    that a config naming a column the table lacks is refused before any work.
    """
    raw_deals = read_table(data.deals)
    check_named_columns(raw_deals, str(data.deals), named_columns or {})
    deals = validate_deals(raw_deals, str(data.deals), data.attributes)
    interactions = validate_interactions(
        read_table(data.interactions),
        str(data.interactions),
        deals["deal_id"],
        data.unknown_deal_interactions,
    )
    truth = _read_truth(data.truth) if data.truth is not None else None
    return Dataset(deals=deals, interactions=interactions, truth=truth)


def check_named_columns(
    deals: pd.DataFrame, source: str, named_columns: Mapping[str, tuple[str, ...]]
) -> None:
    """Every column a config key names is in the deals table; the message says which key, why it
    may hold a value the user did not write (defaults), and what to set instead."""
    found = [str(c) for c in deals.columns]
    for key, columns in named_columns.items():
        missing = [c for c in columns if c not in found]
        if not missing:
            continue
        near = difflib.get_close_matches(missing[0], found, n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        what = f"columns {missing!r}" if len(missing) > 1 else f"column {missing[0]!r}{hint}"
        instead = NAMED_COLUMN_FIX.get(key, "set it to one of them")
        raise ConfigError(
            f"{source}: no {what}, named by {key} = {list(columns)!r} in the "
            "config (a key the config file leaves out takes configs/default.yaml's value); "
            f"the deals table has columns {found[:30]!r}. {instead}"
        )


NAMED_COLUMN_FIX = {
    "data.attributes": "Set data.attributes to a list of those columns ([] for none)",
    "evaluation.segment": "Set evaluation.segment to one of them, or null for no per-segment "
    "metrics",
    "value.segment": "Set value.segment to one of them, or null to estimate missing amounts "
    "from all deals",
}


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
