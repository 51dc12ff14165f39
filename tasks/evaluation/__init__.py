"""Evaluation: choosing a candidate on the validation rows, then scoring it on the test rows."""
