"""Pipeline stages, one package each, over shared infra (infra/, types.py): data, validation,
training, evaluation, registry, tuning, compression, pretraining, monitoring; a stage imports only
the stages before it (tests/test_layout.py).

Some module names repeat on purpose, one role in every stage that has it:
- `tasks.py`: the stage's Prefect tasks, the one module of a stage that imports Prefect; the
  logic beside it runs without Prefect.
- `registering.py`: the stage's runs and registered versions in MLflow (registry: the candidates
  and the chosen version; compression: @compact; pretraining: `<name>-encoder`).
- `report.py`: what the stage's run tells people (validation, tuning, pretraining).
- `caching.py`: the stage's cache key (validation, training).
"""
