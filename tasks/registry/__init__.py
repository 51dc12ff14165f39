"""The MLflow registry: store access, the promotion lock, packaging, serving checks, the registration
lifecycle and promotion, the leaderboard and use cases (predict, reproduce, export)."""
