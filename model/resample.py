"""Moved to audiosr_model.dsp.resample; kept for one release: import from there."""

from audiosr_model.dsp.resample import *  # noqa: F401,F403
from audiosr_model.dsp.resample import (  # noqa: F401  (names outside its __all__)
    _MAX_KERNEL_ELEMENTS,
)
