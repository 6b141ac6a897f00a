"""Controlled changes of an output waveform: what a golden check must tolerate, and what it must catch.

Two families, shared by the portability tests (tests/test_golden_portability.py)
and the noise benchmark (benchmarks/bench_golden_noise.py), so that both measure
the same thing:

* ``NOISE``: float-rounding noise of the kind another CPU vendor, BLAS/oneDNN
  kernel or thread count produces (relative noise of 1e-6, +-1 ulp). A golden
  check must PASS on these.
* ``CHANGES``: the smallest real changes a listener or a downstream model would
  notice (0.5 dB of gain, a 1 ms shift, the band above the cutoff removed, one
  click at -40 dBFS). A golden check must FAIL on these.

Every function takes a float32 waveform at 48 kHz, ``[N]`` or ``[N, C]`` (frames
first, as a multi-channel golden is compared), and returns a new float32 array of
the same shape; randomness comes from an explicit seed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

SAMPLE_RATE = 48000
Perturbation = Callable[[np.ndarray, "float | None"], np.ndarray]  # (waveform, cutoff_hz) -> waveform


def relative_noise(x: np.ndarray, relative: float = 1e-6, seed: int = 0) -> np.ndarray:
    """Each sample times ``1 + relative * N(0, 1)``: rounding noise proportional to the signal."""
    rng = np.random.default_rng(seed)
    x64 = np.asarray(x, dtype=np.float64)
    return (x64 * (1.0 + relative * rng.standard_normal(x64.shape))).astype(np.float32)


def ulp_flip(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Every sample moved by one float32 ulp, up or down at random."""
    rng = np.random.default_rng(seed)
    x32 = np.asarray(x, dtype=np.float32)
    up = np.nextafter(x32, np.float32(np.inf))
    down = np.nextafter(x32, np.float32(-np.inf))
    return np.where(rng.random(x32.shape) < 0.5, up, down).astype(np.float32)


def gain_db(x: np.ndarray, db: float = 0.5) -> np.ndarray:
    """The whole waveform ``db`` dB louder."""
    return (np.asarray(x, dtype=np.float64) * 10 ** (db / 20)).astype(np.float32)


def shift(x: np.ndarray, seconds: float = 1e-3) -> np.ndarray:
    """Delayed by ``seconds`` (zeros shifted in at the start, the tail dropped): same length."""
    n = int(round(seconds * SAMPLE_RATE))
    x32 = np.asarray(x, dtype=np.float32)
    out = np.zeros_like(x32)
    out[n:] = x32[: x32.shape[0] - n]
    return out


def remove_band_above(x: np.ndarray, cutoff_hz: float | None) -> np.ndarray:
    """Every frequency at or above ``cutoff_hz`` removed (a brick wall on the whole signal's FFT).

    Without a cutoff, 8 kHz: the band a super-resolution model exists to generate.
    """
    cutoff = 8000.0 if cutoff_hz is None else float(cutoff_hz)
    x64 = np.asarray(x, dtype=np.float64)
    n = x64.shape[0]
    spectrum = np.fft.rfft(x64, axis=0)  # each channel on its own
    spectrum[np.fft.rfftfreq(n, 1 / SAMPLE_RATE) >= cutoff] = 0
    return np.fft.irfft(spectrum, n, axis=0).astype(np.float32)


def add_click(x: np.ndarray, dbfs: float = -40.0, at: float = 0.5) -> np.ndarray:
    """One sample at fraction ``at`` of the length raised by ``10**(dbfs/20)`` (-40 dBFS = 0.01); in the
    first channel only of several."""
    out = np.array(x, dtype=np.float32, copy=True)
    i = min(int(at * out.shape[0]), out.shape[0] - 1)
    out[(i, 0) if out.ndim == 2 else i] += np.float32(10 ** (dbfs / 20))
    return out


# name -> f(waveform, cutoff_hz). A golden check passes every NOISE entry and fails every CHANGES entry.
NOISE: dict[str, Perturbation] = {
    "relative noise 1e-6": lambda x, cutoff: relative_noise(x, 1e-6),
    "+-1 ulp": lambda x, cutoff: ulp_flip(x),
}
CHANGES: dict[str, Perturbation] = {
    "gain +0.5 dB": lambda x, cutoff: gain_db(x, 0.5),
    "shift 1 ms": lambda x, cutoff: shift(x, 1e-3),
    "band above cutoff removed": lambda x, cutoff: remove_band_above(x, cutoff),
    "click at -40 dBFS": lambda x, cutoff: add_click(x, -40.0),
}

__all__ = ["CHANGES", "NOISE", "add_click", "gain_db", "relative_noise", "remove_band_above", "shift", "ulp_flip"]
