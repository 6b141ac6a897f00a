"""The level contract: what the pipeline promises about loudness and silence.

The original normalises every input to peak 0.5 and every output to peak 0.5
(``0.5 * w / max|w|`` with no epsilon: silent output divides by zero). Users
asked for their level back; a published "fix" boosts quiet inputs to a fixed
RMS, which amplifies noise floors and still divides by zero on silence.

Our contract (documented in the README, tested with hypothesis):

Silence
    An input is *silent* when the peak of its mean-removed mono mix at 48 kHz
    is at or below ``SILENCE_PEAK`` (1e-5, i.e. -100 dBFS). Digital zero and
    DC-only inputs are silent. A silent input yields digital silence of the
    right length without running the model, in every mode.

``faithful`` mode
    Exactly the original: the model sees ``0.5 * (x - mean) / (max|x - mean| + 1e-8)``
    and the output is ``0.5 * y / max|y|`` minus its mean — except that an
    all-zero ``y`` stays all-zero instead of becoming NaN.

``preserve`` mode (default of ``enhance``)
    The model still sees the normalised input (it was trained on peak 0.5).
    The output is then scaled so its RMS (mean removed, over the input's
    duration) equals the input's RMS at 48 kHz. Why RMS of the whole band:
    it is what a listener compares, it is defined for every non-silent
    input, and it does not depend on the cutoff estimate. Two bounds apply:
    the gain is at most ``MAX_GAIN`` (4x, +12 dB) above simply undoing the
    input normalisation, so a near-silent model output is never blown up into
    noise; and the sample peak never exceeds ``PEAK_LIMIT`` (1.0): a louder
    result is scaled down as a whole (no clipping, no limiter distortion).
"""

from __future__ import annotations

import numpy as np

SILENCE_PEAK = 1e-5  # -100 dBFS sample peak of the mean-removed input
MAX_GAIN = 4.0  # preserve mode: at most +12 dB above undoing the input normalisation
PEAK_LIMIT = 1.0  # preserve mode: sample-peak bound of the output
NORMALISED_PEAK = 0.5  # the original's working level
LEVEL_MODES = ("preserve", "faithful")


def _centred(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean() if x.size else x


def peak(x: np.ndarray) -> float:
    """Sample peak of the mean-removed signal."""
    c = _centred(x)
    return float(np.max(np.abs(c))) if c.size else 0.0


def rms(x: np.ndarray) -> float:
    """RMS of the mean-removed signal."""
    c = _centred(x)
    return float(np.sqrt(np.mean(c * c))) if c.size else 0.0


def is_silent(x: np.ndarray, threshold: float = SILENCE_PEAK) -> bool:
    return peak(x) <= threshold


def normalize_input(x: np.ndarray) -> np.ndarray:
    """The original's input normalisation (float32 arithmetic as numpy does it)."""
    x = np.asarray(x, dtype=np.float32)
    x = x - np.mean(x)
    x = x / (np.max(np.abs(x)) + 1e-8)
    return x * 0.5


def input_gain(x: np.ndarray) -> float:
    """The factor ``normalize_input`` multiplies the (mean-removed) input by."""
    x = np.asarray(x, dtype=np.float32)
    x = x - np.mean(x)
    return float(0.5 / (np.max(np.abs(x)) + 1e-8))


def faithful_output(y: np.ndarray) -> np.ndarray:
    """``0.5 * y / max|y|`` then mean removal; all-zero stays all-zero."""
    y = np.asarray(y, dtype=np.float32)
    top = np.max(np.abs(y), axis=-1, keepdims=True) if y.size else np.zeros(1, np.float32)
    if not np.all(top > 0):
        return np.zeros_like(y)
    y = 0.5 * y / top
    return y - np.mean(y, axis=-1, keepdims=True)


def preserve_output(y: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, dict]:
    """Scale the model output ``y`` to the RMS of ``reference`` (the 48 kHz mono input).

    Returns the scaled output and a small dict describing what was applied.
    """
    y = np.asarray(y, dtype=np.float64)
    y = y - y.mean() if y.size else y
    target = rms(reference)
    current = float(np.sqrt(np.mean(y * y))) if y.size else 0.0
    info = {"target_rms": target, "model_rms": current, "limited": False, "capped": False}
    if target == 0.0 or current == 0.0:
        info["gain"] = 0.0
        return np.zeros(y.shape, dtype=np.float32), info
    gain = target / current
    cap = MAX_GAIN / input_gain(reference)
    if gain > cap:
        gain, info["capped"] = cap, True
    out = y * gain
    top = float(np.max(np.abs(out)))
    if top > PEAK_LIMIT:
        gain *= PEAK_LIMIT / top
        out = y * gain
        info["limited"] = True
    info["gain"] = gain
    return np.clip(out, -PEAK_LIMIT, PEAK_LIMIT).astype(np.float32), info


def dbfs(value: float) -> float:
    return 20.0 * np.log10(value) if value > 0 else float("-inf")
