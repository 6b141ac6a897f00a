"""Moved to `audiosr_verify.report.sections` (the section builders; the report model is
`audiosr_verify.report.document`); kept for one release."""

from audiosr_verify.report.sections import *  # noqa: F401,F403
