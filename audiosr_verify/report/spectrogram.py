"""Moved to `audiosr_verify.compare.spectrogram` (the numbers live with the metrics, below the checks and
the report that both use them); kept for one release."""

from audiosr_verify.compare.spectrogram import *  # noqa: F401,F403
from audiosr_verify.compare.spectrogram import (  # noqa: F401
    DISPLAY_RATE, DYNAMIC_RANGE_DB, FLOOR_DB, HOP, N_FFT, Spectrogram, case_spectrograms, colour_range,
    spectrogram, to_display_rate,
)
