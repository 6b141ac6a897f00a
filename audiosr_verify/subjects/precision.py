"""Moved to `audiosr_verify.subjects.fast_paths` (the ``precision:P[+sdpa][+compile]`` subjects: enhance's fast
paths; one of three modules that were all called precision.py); kept for one release."""

from audiosr_verify.subjects.fast_paths import *  # noqa: F401,F403
