"""Invariants any AudioSR implementation at parity with the original must keep, per stage of a subject.

Each check takes an activated subject and one input and returns the list of
violations (empty: the property holds). The pytest suite drives them with
hypothesis (audiosr_verify/testing/suite/test_properties.py); they are plain
functions so anything else can too. The properties follow from the
original's arithmetic, so they hold for the original itself:

* normalize: 0.5 * (x - mean) / (max|x - mean| + 1e-8): peak at most 0.5, mean 0, length kept;
* features: T = N / 480 frames of 256 log-mel bins and 1024 STFT bins, log-mel at or above
  log(1e-5), digital silence exactly log(1e-5);
* cutoff: a bin in [0, 1024), unchanged when the STFT is scaled by a power of two;
* output_level: peak 0.5 before the mean is removed, mean 0, invariant to power-of-two gain;
* enhance: the input's length at 48 kHz, finite output (or the original's own error on digital
  silence), and the same output whatever the input's gain (the original normalises both ends).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from audiosr_verify import schema

LOG_FLOOR = math.log(1e-5)


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _first(out: Any, name: str) -> Any:
    if isinstance(out, dict):
        return out[name]
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def normalize_properties(subject, x: np.ndarray) -> list[str]:
    y = _np(_first(subject.normalize(np.asarray(x, np.float32)), "waveform"))
    bad = []
    if y.shape != x.shape:
        bad.append(f"length {y.shape} vs {x.shape}")
        return bad
    if not np.all(np.isfinite(y)):
        bad.append("non-finite output")
        return bad
    if np.max(np.abs(y)) > 0.5 + 1e-6:
        bad.append(f"peak {np.max(np.abs(y)):.9g} > 0.5")
    if abs(float(np.mean(y))) > 1e-6:
        bad.append(f"mean {np.mean(y):.3g} is not 0")
    return bad


def features_properties(subject, x: np.ndarray) -> list[str]:
    out = subject.features(np.asarray(x, np.float32))
    log_mel = _np(out["log_mel"] if isinstance(out, dict) else out[0])
    stft = _np(out["stft"] if isinstance(out, dict) else out[1])
    t = x.shape[-1] // schema.HOP
    bad = []
    if log_mel.shape != (t, schema.N_MELS):
        bad.append(f"log-mel shape {log_mel.shape}, expected {(t, schema.N_MELS)}")
    if stft.shape != (t, schema.N_STFT_BINS):
        bad.append(f"STFT shape {stft.shape}, expected {(t, schema.N_STFT_BINS)}")
    if bad:
        return bad
    if not (np.all(np.isfinite(log_mel)) and np.all(np.isfinite(stft))):
        return ["non-finite features"]
    if log_mel.min() < LOG_FLOOR - 1e-5:
        bad.append(f"log-mel {log_mel.min():.6g} below log(1e-5)")
    if not np.any(x) and not np.allclose(log_mel, LOG_FLOOR, atol=1e-6):
        bad.append("digital silence does not give log(1e-5) everywhere")
    if stft.min() < 0:
        bad.append("negative STFT magnitude")
    return bad


def cutoff_properties(subject, stft: np.ndarray) -> list[str]:
    k = int(_first(subject.cutoff(np.asarray(stft, np.float32)), "bin"))
    bad = []
    if not 0 <= k < schema.N_STFT_BINS:
        bad.append(f"cutoff bin {k} outside [0, {schema.N_STFT_BINS})")
    for factor in (0.5, 4.0):  # exact in binary floating point: the percentile cannot move
        k2 = int(_first(subject.cutoff(np.asarray(stft, np.float32) * np.float32(factor)), "bin"))
        if k2 != k:
            bad.append(f"cutoff bin {k2} after scaling the STFT by {factor}, {k} before")
    return bad


def output_level_properties(subject, x: np.ndarray) -> list[str]:
    if not np.any(x):
        return []  # the original divides by zero here (NaN); nothing to promise at parity
    y = _np(_first(subject.output_level(np.asarray(x, np.float32)), "waveform"))
    bad = []
    if y.shape != x.shape or not np.all(np.isfinite(y)):
        return [f"bad output {y.shape}"]
    if abs(float(np.mean(y))) > 1e-6:
        bad.append(f"mean {np.mean(y):.3g} is not 0")
    x64 = np.asarray(x, dtype=np.float64)
    z_mean = float(np.mean(0.5 * x64 / np.max(np.abs(x64))))  # the mean the stage removes
    peak = float(np.max(np.abs(y + z_mean)))
    if abs(peak - 0.5) > 1e-6:
        bad.append(f"peak before the mean is removed {peak:.9g}, not 0.5")
    y2 = _np(_first(subject.output_level(np.asarray(x, np.float32) * np.float32(2.0)), "waveform"))
    if np.max(np.abs(y2 - y)) > 1e-6:
        bad.append(f"changes with input gain x2 by {np.max(np.abs(y2 - y)):.3g}")
    return bad


def enhance_properties(subject, x: np.ndarray, rate: int, seed: int = 42, steps: int = 2,
                       guidance: float = 3.5) -> list[str]:
    """Length, finiteness, silence, and gain invariance of the end-to-end output (one or two runs)."""
    n = schema.enhance_length(x.shape[-1], rate)
    silent = not np.any(x - np.mean(x))
    try:
        y = _np(_first(subject.enhance(np.asarray(x, np.float32), rate, seed, steps, guidance), "waveform"))
    except Exception as exc:
        kind = getattr(exc, "type_name", type(exc).__name__)
        if silent and kind == "ValueError":
            return []  # the original's own behaviour on silence (scipy rejects Wn = 1)
        return [f"raised {kind}: {exc}"]
    y = y.reshape(-1)
    if y.size != n:
        return [f"{y.size} output samples, expected {n}"]
    if not np.all(np.isfinite(y)):
        return ["non-finite output"]
    if silent:
        return []
    y2 = _np(_first(subject.enhance(np.asarray(x, np.float32) * np.float32(0.25), rate, seed, steps, guidance),
                    "waveform")).reshape(-1)
    if y2.shape != y.shape or np.max(np.abs(y2 - y)) > 1e-4:
        diff = np.max(np.abs(y2 - y)) if y2.shape == y.shape else math.inf
        return [f"output changes by {diff:.3g} when the input is 12 dB quieter"]
    return []


__all__ = ["cutoff_properties", "enhance_properties", "features_properties", "normalize_properties",
           "output_level_properties"]
