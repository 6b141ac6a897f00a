"""Moved to audiosr_model.dsp.level; kept for one release: import from there."""

from audiosr_model.dsp.level import *  # noqa: F401,F403
from audiosr_model.dsp.level import (  # noqa: F401  (names outside its __all__)
    _check_finite,
)
