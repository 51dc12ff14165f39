"""Validation: expectation suites (Great Expectations), row-level checks and drift, in one report."""
