"""Moved to audiosr_model.weights.random_weights; kept for one release: import from there."""

from audiosr_model.weights.random_weights import *  # noqa: F401,F403
