"""Moved to audiosr_model.dsp.lowpass; kept for one release: import from there."""

from audiosr_model.dsp.lowpass import *  # noqa: F401,F403
