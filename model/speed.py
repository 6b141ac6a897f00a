"""Moved to audiosr_model.runtime.speed; kept for one release: import from there."""

from audiosr_model.runtime.speed import *  # noqa: F401,F403
