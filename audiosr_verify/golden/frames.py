"""A golden's waveform as the store compares and fingerprints it (kept below the store and the noise
measurement, which both use it)."""

from __future__ import annotations

import numpy as np

from audiosr_verify.util.hashing import sha256_array


def waveform_sha256(x: np.ndarray) -> str:
    return sha256_array(x, dtype="<f4")


def _frames(x: np.ndarray) -> np.ndarray:
    """An output as float32 ``[N]`` (mono) or ``[N, C]`` (frames first, as soundfile reads a file)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    return np.ascontiguousarray(x if x.ndim <= 2 else x.reshape(-1))


__all__ = ["_frames", "waveform_sha256"]
