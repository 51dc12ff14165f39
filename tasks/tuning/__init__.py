"""Hyper-parameter tuning: Optuna studies per data set and family, judged on the validation rows only,
kept only when they beat params.yaml's settings on the half of them no trial was chosen by."""
