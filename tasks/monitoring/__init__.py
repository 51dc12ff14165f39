"""Monitoring: what a registered model is asked to score, against what it was trained and tested on."""
