"""Moved to audiosr_model.runtime.memory; kept for one release: import from there."""

from audiosr_model.runtime.memory import *  # noqa: F401,F403
from audiosr_model.runtime.memory import (  # noqa: F401  (names outside its __all__)
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
)
