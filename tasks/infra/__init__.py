"""Shared infrastructure of every stage: settings, params.yaml, errors, retries, files, fingerprints, servers."""
