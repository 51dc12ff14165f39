"""Prefect flows and the `mlpipe` command line that starts them."""
