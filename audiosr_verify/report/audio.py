"""Sound for the report's players: a waveform as a small embeddable file (soundfile / libsndfile).

Ogg Opus at about 50 kbit/s mono (libsndfile's compression level 0.85), 48 kHz
(an input at another rate is resampled for listening, as it is for its
spectrogram): about 6 kB per second, a tenth of 16-bit PCM, and transparent
enough to hear a click, a gain change or a missing band. Where libsndfile
lacks Opus (before 1.0.29), 16-bit FLAC. Clips longer than `MAX_SECONDS` are
cut (the caption says so). Listening only: verdicts use the exact samples.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from audiosr_verify.compare.spectrogram import DISPLAY_RATE, to_display_rate

OPUS_LEVEL = 0.85  # libsndfile compression level: 0.8 -> ~62 kbit/s, 0.85 -> ~50, 0.9 -> ~37
MAX_SECONDS = 12.0


@dataclass
class Encoded:
    data: bytes = field(repr=False)
    mime: str
    seconds: float
    cut: bool  # longer than MAX_SECONDS: only the start is kept


def _opus_available() -> bool:
    import soundfile as sf

    return "OPUS" in sf.available_subtypes("OGG")


def encode(samples: np.ndarray, rate: int, max_seconds: float = MAX_SECONDS) -> Encoded:
    """``samples`` (mono, any rate) as Ogg Opus (else FLAC) at 48 kHz, at most ``max_seconds`` long."""
    import soundfile as sf

    x = to_display_rate(np.asarray(samples, dtype=np.float64).reshape(-1), rate)
    limit = int(max_seconds * DISPLAY_RATE)
    cut = x.size > limit
    x = np.clip(x[:limit], -1.0, 1.0).astype(np.float32)  # a player clips anyway; the encoder should not wrap
    buf = io.BytesIO()
    if _opus_available():
        sf.write(buf, x, DISPLAY_RATE, format="OGG", subtype="OPUS", compression_level=OPUS_LEVEL)
        mime = "audio/ogg"
    else:
        sf.write(buf, x, DISPLAY_RATE, format="FLAC", subtype="PCM_16")
        mime = "audio/flac"
    return Encoded(buf.getvalue(), mime, x.size / DISPLAY_RATE, cut)


__all__ = ["MAX_SECONDS", "Encoded", "encode"]
