"""Pipeline stages, one package each (data, validation, training, evaluation, registry) over shared infra."""
