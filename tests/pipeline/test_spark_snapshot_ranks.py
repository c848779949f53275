"""The Spark engine refuses the snapshot-rank family: its buckets never hold every deal open at
an as_of, so its ranks would differ from the local engine's."""

from __future__ import annotations

import pytest

from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.errors import ConfigError
from closeprob.pipeline.spark.features import refuse_snapshot_ranks


def test_spark_refuses_a_spec_with_snapshot_ranks_and_names_the_way_out() -> None:
    spec = FeatureSpec(event_types=("email",), snapshot_ranks=True)
    with pytest.raises(
        ConfigError,
        match=r"train --engine spark \('acme'\): features.snapshot_ranks ranks each deal among "
        r"all deals open at its as_of, .*; use --engine local, or train with "
        r"features.snapshot_ranks: false",
    ):
        refuse_snapshot_ranks(spec, "train --engine spark ('acme')")


def test_spark_takes_a_spec_without_snapshot_ranks() -> None:
    refuse_snapshot_ranks(FeatureSpec(event_types=("email",)), "predict --engine spark")
