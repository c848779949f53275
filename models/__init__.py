"""The classifier, its calibration, time splits and metrics. No disk, no MLflow in here."""
