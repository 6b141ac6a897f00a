"""Moved to audiosr_model.nets.vae; kept for one release: import from there."""

from audiosr_model.nets.vae import *  # noqa: F401,F403
from audiosr_model.nets.vae import (  # noqa: F401  (names outside its __all__)
    group_norm,
)
