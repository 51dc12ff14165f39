"""The MLflow registry: store access and locks, packaging, serving checks, promotion, reports and use cases."""
