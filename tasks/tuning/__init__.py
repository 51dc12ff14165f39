"""Hyper-parameter tuning: Optuna studies per data set and family, judged on the validation rows only."""
