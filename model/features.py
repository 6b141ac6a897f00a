"""Moved to audiosr_model.dsp.features; kept for one release: import from there."""

from audiosr_model.dsp.features import *  # noqa: F401,F403
from audiosr_model.dsp.features import (  # noqa: F401  (names outside its __all__)
    _AUDIO,
    _mel_basis_torch,
)
