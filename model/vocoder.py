"""Moved to audiosr_model.nets.vocoder; kept for one release: import from there."""

from audiosr_model.nets.vocoder import *  # noqa: F401,F403
from audiosr_model.nets.vocoder import (  # noqa: F401  (names outside its __all__)
    get_padding,
)
