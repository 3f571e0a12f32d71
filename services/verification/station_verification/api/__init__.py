"""The REST API of the verification service (cards and their top-ups)."""
