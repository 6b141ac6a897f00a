"""Moved to audiosr_model.dsp.waveform, audiosr_model.io.audio_file; kept for one release: import from there."""

from audiosr_model.dsp.waveform import *  # noqa: F401,F403
from audiosr_model.dsp.waveform import SAMPLE_RATE as MODEL_SAMPLE_RATE  # noqa: F401  (the old name)
from audiosr_model.dsp.waveform import MIN_SAMPLES as MIN_SAMPLES_48K  # noqa: F401  (the old name)
from audiosr_model.io.audio_file import *  # noqa: F401,F403
