"""Moved to audiosr_model.runtime.compiled; kept for one release: import from there."""

from audiosr_model.runtime.compiled import *  # noqa: F401,F403
