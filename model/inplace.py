"""Moved to audiosr_model.nets.inplace; kept for one release: import from there."""

from audiosr_model.nets.inplace import *  # noqa: F401,F403
