"""The jobs: one module per command (`closeprob train`, `predict`, ...), each wiring the library
below it (services, data access, models, features) and never imported by it."""
