"""Moved to audiosr_model.weights.checkpoint; kept for one release: import from there."""

from audiosr_model.weights.checkpoint import *  # noqa: F401,F403
