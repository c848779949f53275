"""Read and validate the two input tables named by the config's `data:` section."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.config import DataConfig
from pipeline.io import read_table
from pipeline.validate import validate_deals, validate_interactions


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
