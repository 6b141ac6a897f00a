"""Moved to audiosr_model.runtime.resident; kept for one release: import from there."""

from audiosr_model.runtime.resident import *  # noqa: F401,F403
from audiosr_model.runtime.resident import (  # noqa: F401  (names outside its __all__)
    MADV_DONTNEED,
    PAGE,
)
