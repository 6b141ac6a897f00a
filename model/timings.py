"""Moved to audiosr_model.runtime.timings; kept for one release: import from there."""

from audiosr_model.runtime.timings import *  # noqa: F401,F403
