"""Moved to audiosr_model.weights.checkpoint_reader; kept for one release: import from there."""

from audiosr_model.weights.checkpoint_reader import *  # noqa: F401,F403
