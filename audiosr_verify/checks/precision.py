"""Moved to `audiosr_verify.checks.metric_verdict` (a reduced-precision subject judged in metric terms; one of
three modules that were all called precision.py); kept for one release."""

from audiosr_verify.checks.metric_verdict import *  # noqa: F401,F403
