"""Moved to audiosr_model.runtime.precision; kept for one release: import from there."""

from audiosr_model.runtime.precision import *  # noqa: F401,F403
