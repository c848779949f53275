"""The fitted models as plain documents: JSON-able dicts and LightGBM's own model text, and back.

Nothing here touches a disk (pipeline/model_artifact.py writes and reads the files); nothing is
pickled. Floats go through JSON as their shortest repr, which reads back to the same double, so
a model rebuilt from its documents scores exactly as the one that wrote them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from typing import Any

import lightgbm as lgb

from closeprob.features.spec import FeatureSpec
from closeprob.models.classifier import CloseModel, RawScoreCalibrator
from closeprob.models.linear import CategoricalTerm, LinearPart, NumericTerm
from closeprob.models.value import DealValueModel


def booster_text(booster: lgb.LGBMModel | lgb.Booster) -> str:
    """LightGBM's model text of the trees a booster predicts with (the early-stopping choice
    when there is one), with its pandas category levels."""
    trees = booster.booster_ if isinstance(booster, lgb.LGBMModel) else booster
    return str(trees.model_to_string())


def spec_document(spec: FeatureSpec) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()}


# Spec keys added after models were first stored, with what a model stored before the key
# existed computed (its features are those it was fitted on); the class default is for new ones.
LEGACY_SPEC = {"stage_win_rate": False, "market_robust": False}


def spec_from_document(document: dict[str, Any]) -> FeatureSpec:
    """Unknown keys are refused (a newer format), missing ones take the class default (those of
    LEGACY_SPEC their value there)."""
    known = {f.name for f in fields(FeatureSpec)}
    unknown = sorted(set(document) - known)
    if unknown:
        raise ValueError(f"feature spec keys {unknown} are unknown to this closeprob")
    values: dict[str, Any] = LEGACY_SPEC | {
        k: tuple(v) if isinstance(v, list) else v for k, v in document.items()
    }
    return FeatureSpec(**values)


def close_model_document(model: CloseModel) -> dict[str, Any]:
    """Everything of a CloseModel but the booster's trees (`booster_text`)."""
    calibrator = model.calibrator
    return {
        "spec": spec_document(model.spec),
        "feature_names": list(model.feature_names),
        "categories": {k: list(v) for k, v in model.categories.items()},
        "calibrator": {
            "method": calibrator.method,
            "slope": calibrator.slope,
            "intercept": calibrator.intercept,
            "x": list(calibrator.x),
            "y": list(calibrator.y),
        },
        "calibration_method": model.calibration_method,
        "blend_weight": model.blend_weight,
        "linear": None if model.linear is None else _linear_document(model.linear),
    }


def close_model_from_document(document: dict[str, Any], booster: str) -> CloseModel:
    calibrator = document["calibrator"]
    linear = document["linear"]
    return CloseModel(
        spec=spec_from_document(document["spec"]),
        feature_names=list(document["feature_names"]),
        categories={k: list(v) for k, v in document["categories"].items()},
        booster=lgb.Booster(model_str=booster),
        calibrator=RawScoreCalibrator(
            method=calibrator["method"],
            slope=float(calibrator["slope"]),
            intercept=float(calibrator["intercept"]),
            x=tuple(float(v) for v in calibrator["x"]),
            y=tuple(float(v) for v in calibrator["y"]),
        ),
        calibration_method=document["calibration_method"],
        linear=None if linear is None else _linear_from_document(linear),
        blend_weight=float(document["blend_weight"]),
    )


def _linear_document(linear: LinearPart) -> dict[str, Any]:
    features: list[dict[str, Any]] = []
    for term in linear.features:
        if isinstance(term, NumericTerm):
            features.append({"kind": "numeric"} | asdict(term))
        else:
            features.append(
                {"kind": "categorical", "columns": dict(term.columns), "coefs": list(term.coefs)}
            )
    return {"intercept": linear.intercept, "features": features}


def _linear_from_document(document: dict[str, Any]) -> LinearPart:
    features: list[NumericTerm | CategoricalTerm] = []
    for term in document["features"]:
        if term["kind"] == "numeric":
            indicator = term["indicator"]
            features.append(
                NumericTerm(
                    median=float(term["median"]),
                    mean=float(term["mean"]),
                    scale=float(term["scale"]),
                    coef=float(term["coef"]),
                    indicator=None if indicator is None else _triple(indicator),
                )
            )
        else:
            columns = {str(k): int(v) for k, v in term["columns"].items()}
            features.append(CategoricalTerm(columns, tuple(float(c) for c in term["coefs"])))
    return LinearPart(tuple(features), float(document["intercept"]))


def _triple(values: list[float]) -> tuple[float, float, float]:
    mean, scale, coef = (float(v) for v in values)
    return mean, scale, coef


def value_model_document(model: DealValueModel) -> dict[str, Any]:
    """Everything of a DealValueModel but the regressor's trees (`booster_text`)."""
    return {
        "attributes": list(model.attributes),
        "categories": {k: list(v) for k, v in model.categories.items()},
        "has_regressor": model.regressor is not None,
        "segment": model.segment,
        "segment_medians": dict(model.segment_medians),
        "global_median": None if math.isnan(model.global_median) else model.global_median,
        "smearing": model.smearing,
    }


def value_model_from_document(document: dict[str, Any], regressor: str | None) -> DealValueModel:
    median = document["global_median"]
    return DealValueModel(
        attributes=list(document["attributes"]),
        categories={k: list(v) for k, v in document["categories"].items()},
        regressor=None if regressor is None else lgb.Booster(model_str=regressor),
        segment=document["segment"],
        segment_medians={str(k): float(v) for k, v in document["segment_medians"].items()},
        global_median=float("nan") if median is None else float(median),
        # Documents written before the smearing factor: 1.0, the back-transform as it was.
        smearing=float(document.get("smearing", 1.0)),
    )
