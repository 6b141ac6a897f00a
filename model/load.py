"""Moved to audiosr_model.weights.load; kept for one release: import from there."""

from audiosr_model.weights.load import *  # noqa: F401,F403
