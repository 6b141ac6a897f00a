"""Moved to audiosr_model.runtime.host; kept for one release: import from there."""

from audiosr_model.runtime.host import *  # noqa: F401,F403
