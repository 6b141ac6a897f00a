"""Property tests of the spectral front end and the cutoff detector.

Features: for any normalised, padded 48 kHz input the log-mel has
``int(padded_duration * 100)`` frames of 256 bins, is finite and floored at
``log(1e-5)``; the STFT magnitude has the same frames and 1024 bins.

Cutoff: white noise band-limited at f (2-20 kHz), 5.12 s long so it fills the
analysis window (no step into the zero padding, whose splatter would dominate
short clips), is detected within a stated tolerance of f:

- brick-wall band limit (FFT mask): -3.5 % .. +0.5 % of f (the detector takes the
  bin holding 98.5 % of the magnitude sum, i.e. about 1.5 % below a flat band edge);
- the project's own low-pass (``model.lowpass.lowpass``, order 8, applied
  forwards-backwards twice, which rounds the edge off): cheby1 and ellip -5 % .. +0.5 %,
  butter -8 % .. +0.5 %. (bessel is gentle by design and lands 15-30 % low: not a cutoff test.)

Silence falls back to 24 kHz (the original's "< 1 kHz means empty" rule).
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audiosr_verify.testing import strategies as ast
from audiosr_model.dsp import level, lowpass
from audiosr_model.dsp.features import wav_feature_extraction
from audiosr_model.dsp.waveform import pad_wav, padded_duration

RATE = 48000
LOG_FLOOR = float(torch.log(torch.tensor(1e-5, dtype=torch.float32)))
CUTOFF_TOLERANCE = {  # (low, high) relative to f
    "brickwall": (-0.035, 0.005),
    "cheby1": (-0.05, 0.005),
    "ellip": (-0.05, 0.005),
    "butter": (-0.08, 0.005),
}


def features_of(x: np.ndarray):
    """The pipeline's analysis of a mono 48 kHz segment (as model.pipeline.prepare)."""
    pad = padded_duration(len(x) / RATE)
    frames = int(pad * 100)
    wave = pad_wav(level.normalize_input(x)[None, :], int(RATE * pad))
    log_mel, stft = wav_feature_extraction(torch.from_numpy(wave), frames)
    return frames, log_mel, stft


@settings(max_examples=15)
@given(ast.audio(rates=[RATE], max_channels=1, max_seconds=6.0, min_samples=101))
def test_mel_shape_finite_and_floored(example):
    x = example[0][0]
    frames, log_mel, stft = features_of(x)
    assert tuple(log_mel.shape) == (frames, 256)
    assert tuple(stft.shape) == (frames, 1024)
    assert torch.isfinite(log_mel).all() and torch.isfinite(stft).all()
    assert float(log_mel.min()) >= LOG_FLOOR
    assert float(stft.min()) >= 0.0
    if level.is_silent(x) and not np.any(level.normalize_input(x)):
        assert torch.all(log_mel == LOG_FLOOR)


@settings(max_examples=10)
@given(st.integers(101, 11 * RATE))
def test_mel_frames_follow_padded_duration(n):
    frames, log_mel, _ = features_of(np.zeros(n, dtype=np.float32))
    assert frames == int(padded_duration(n / RATE) * 100)
    assert frames % 512 in (0, 511)  # 5.12 s multiples; 511 is the original's float quirk
    assert tuple(log_mel.shape) == (frames, 256)


def _noise(seed: int, n: int = int(5.12 * RATE)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def _brickwall(x: np.ndarray, f: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    spec[np.fft.rfftfreq(len(x), 1.0 / RATE) > f] = 0
    return np.fft.irfft(spec, len(x))


@settings(max_examples=15)
@given(
    f=st.integers(40, 400).map(lambda k: 50.0 * k),  # 2-20 kHz on a 50 Hz grid (keeps scipy's polyphase filter short)
    kind=st.sampled_from(sorted(CUTOFF_TOLERANCE)),
    seed=st.integers(0, 2**16),
    gain_db=st.floats(-90, 0),
)
def test_cutoff_of_band_limited_noise(f, kind, seed, gain_db):
    x = _noise(seed)
    y = _brickwall(x, f) if kind == "brickwall" else lowpass.lowpass(x, f, RATE, order=8, ftype=kind)
    y = (y / np.max(np.abs(y)) * 10 ** (gain_db / 20)).astype(np.float32)  # level must not matter
    _, _, stft = features_of(y)
    got = lowpass.cutoff_hz_from_stft(stft)
    lo, hi = CUTOFF_TOLERANCE[kind]
    assert f * (1 + lo) <= got <= f * (1 + hi), f"{kind} at {f:.0f} Hz detected at {got:.0f} Hz"


@settings(max_examples=8)
@given(ast.silent_kinds_audio(rates=[RATE], max_channels=1, max_seconds=3.0, min_samples=101))
def test_cutoff_of_silence_is_nyquist(example):
    x = example[0][0]
    assert level.is_silent(x)
    _, _, stft = features_of(np.zeros_like(x))  # what a silent input is, once its mean is removed
    assert lowpass.cutoff_hz_from_stft(stft) == lowpass.NYQUIST_HZ


@settings(max_examples=8)
@given(f=st.floats(40.0, 800.0), phase=st.floats(0, 6.3), seconds=st.floats(1.0, 5.12))
def test_low_content_falls_back_to_nyquist_and_passes_through(f, phase, seconds):
    """Energy below 1 kHz (a tone with 50 ms fades, like a bass note): the cutoff is
    24 kHz, where the original's scipy design raises ValueError; our low-pass step
    passes the signal through unchanged instead. (Without fades the clicks at the
    ends spread energy over the whole band and the detector sees 1-2 kHz.)"""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.05 * RATE))
    x = (0.3 * fade * np.sin(2 * np.pi * f * t + phase)).astype(np.float32)
    _, _, stft = features_of(x)
    cut = lowpass.cutoff_hz_from_stft(stft)
    assert cut == lowpass.NYQUIST_HZ
    assert lowpass.lowpass_or_passthrough(x, cut, RATE) is not None
    np.testing.assert_array_equal(lowpass.lowpass_or_passthrough(x, cut, RATE), x)
