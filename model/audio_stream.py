"""Validated, block-wise reading of audio files (for inputs of any length).

`read_audio_info` checks what can be checked without reading samples (the
file exists, is a regular file, has a format soundfile reads, has channels
and a sane rate); `read_audio_block` reads a range of frames and rejects
NaN/Inf. Every problem is an `AudioSRError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from model.errors import AudioSRError

MIN_RATE, MAX_RATE = 1000, 384000


def read_audio_info(path: str | Path):
    """soundfile's info for ``path``, or an AudioSRError saying what is wrong."""
    p = Path(path)
    if not p.exists():
        raise AudioSRError("no such file", p)
    if p.is_dir():
        raise AudioSRError("is a directory, not an audio file", p)
    if not os.access(p, os.R_OK):
        raise AudioSRError("file is not readable (permission denied)", p)
    if p.stat().st_size == 0:
        raise AudioSRError("file is empty (0 bytes)", p)
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioSRError(f"not a readable audio file ({_reason(exc)})", p) from None
    if info.channels < 1:
        raise AudioSRError("audio has no channels", p)
    if info.frames <= 0:
        raise AudioSRError("audio has no samples", p)
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise AudioSRError(
            f"unsupported sample rate {info.samplerate} Hz (supported: {MIN_RATE}-{MAX_RATE} Hz)", p
        )
    return info


def read_audio_block(path: str | Path, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) as float32 [channels, samples]; rejects NaN/Inf and short reads."""
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(start)
            data = f.read(stop - start, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioSRError(f"cannot read audio data ({_reason(exc)})", path) from None
    if data.shape[0] < stop - start:
        raise AudioSRError(
            f"file is truncated: expected {stop - start} frames from {start}, read {data.shape[0]}", path
        )
    if not np.isfinite(data).all():
        raise AudioSRError("audio contains NaN or Inf samples", path)
    return np.ascontiguousarray(data.T)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # libsndfile repeats the path; keep only its explanation
    return text.split(": ", 1)[-1] if ": " in text else text or type(exc).__name__
