"""Training: features, the networks' fits with Lightning, the classical baseline, and their cache keys."""
