"""Adapters that map public data sets onto the data contract (README, "Data contract").

Each adapter is a module here with `adapt(source: Path) -> Adapted`, reading the raw files
under `source` (a folder of ../shared/data) and returning contract-shaped deals and
interactions. `python -m pipeline import <name>` runs one and writes its output.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from closeprob.pipeline.errors import ConfigError, DataContractError
from closeprob.pipeline.io import read_source_csv

# name -> (module, folder under the shared data root)
ADAPTERS: dict[str, tuple[str, str | None]] = {
    "bpi2012": ("closeprob.pipeline.adapters.bpi2012", "bpi2012"),
    "olist": ("closeprob.pipeline.adapters.olist", "olist-marketing-funnel"),
    "crm_sales": ("closeprob.pipeline.adapters.crm_sales", "crm-sales-opportunities"),
    "bank_marketing": ("closeprob.pipeline.adapters.bank_marketing", "uci-bank-marketing"),
    # A team's own CRM export: no shared folder, --source names it.
    "salesforce": ("closeprob.pipeline.adapters.salesforce", None),
    "hubspot": ("closeprob.pipeline.adapters.hubspot", None),
}
DEFAULT_SHARED_DATA = Path("../shared/data")


@dataclass(frozen=True)
class Adapted:
    """A data set on the contract, with notes on what its shape cannot support."""

    deals: pd.DataFrame
    interactions: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    # A CRM export's config sections (data.attributes, segments): `import` writes config.yaml.
    settings: dict[str, Any] | None = None


def read_csv_columns(path: Path, columns: list[str], expected: str) -> pd.DataFrame:
    """`columns` of a raw CSV as text (only empty cells are missing); errors name the file."""
    if not path.is_file():
        raise DataContractError(f"{path}: file not found; expected the {expected}")
    frame = read_source_csv(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataContractError(
            f"{path}: missing column(s) {missing}; found {[str(c) for c in frame.columns]}"
        )
    return frame[columns]


def source_folder(name: str, shared_root: Path = DEFAULT_SHARED_DATA) -> Path:
    """Where the raw files of data set `name` live."""
    if name not in ADAPTERS:
        raise ConfigError(f"unknown data set {name!r}; known: {sorted(ADAPTERS)}")
    folder = ADAPTERS[name][1]
    if folder is None:
        raise ConfigError(
            f"{name} reads your own CRM export: pass --source DIR (the folder of its CSV files), "
            "or set data.source in the config"
        )
    return shared_root / folder


def run_adapter(name: str, source: Path) -> Adapted:
    """Run the adapter of data set `name` on the raw files in `source`."""
    if name not in ADAPTERS:
        raise ConfigError(f"unknown data set {name!r}; known: {sorted(ADAPTERS)}")
    module = importlib.import_module(ADAPTERS[name][0])
    adapted: Adapted = module.adapt(source)
    return adapted
