"""Moved to audiosr_model.io.audio_stream, audiosr_model.dsp.waveform; kept for one release: import from there."""

from audiosr_model.io.audio_stream import *  # noqa: F401,F403
from audiosr_model.io.audio_stream import (  # noqa: F401  (names outside its __all__)
    SCAN_BLOCK_FRAMES,
)
from audiosr_model.dsp.waveform import (  # noqa: F401
    samples_at_48k,
)
from audiosr_model.dsp.waveform import SAMPLE_RATE as MODEL_RATE  # noqa: F401  (the old name)
from audiosr_model.dsp.waveform import MIN_SAMPLES as MIN_SAMPLES_48K  # noqa: F401  (the old name)
