"""Moved to audiosr_model.io.publish; kept for one release: import from there."""

from audiosr_model.io.publish import *  # noqa: F401,F403
from audiosr_model.io.publish import (  # noqa: F401  (names outside its __all__)
    BACKUP_SUFFIX,
    LOCK_SUFFIX,
    PARTIAL_SUFFIX,
)
