"""The edges of closeprob: config, files, validation, MLflow, the CLI and stage orchestration."""
