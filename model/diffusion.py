"""Moved to audiosr_model.sampling.schedule, audiosr_model.sampling.ddim; kept for one release: import from there."""

from audiosr_model.sampling.ddim import *  # noqa: F401,F403
from audiosr_model.sampling.schedule import *  # noqa: F401,F403
