"""Moved to audiosr_model.dsp.postprocess; kept for one release: import from there."""

from audiosr_model.dsp.postprocess import *  # noqa: F401,F403
from audiosr_model.dsp.postprocess import (  # noqa: F401  (names outside its __all__)
    _energy_ratio,
)
