"""Moved to audiosr_model.io.safe_open; kept for one release: import from there."""

from audiosr_model.io.safe_open import *  # noqa: F401,F403
from audiosr_model.io.safe_open import (  # noqa: F401  (names outside its __all__)
    MAX_JSON_DEPTH,
)
