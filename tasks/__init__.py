"""Pipeline stages: plain functions plus the thin Prefect tasks that wrap them."""
