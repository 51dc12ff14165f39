"""Shared infrastructure of every stage: settings, params.yaml, errors, retries, files, fingerprints,
servers and process groups, and the private parts of Prefect (prefect_private.py)."""
