"""The level contract: what the pipeline promises about loudness and silence.

The original normalises every input to peak 0.5 and every output to peak 0.5
(``0.5 * w / max|w|`` with no epsilon: silent output divides by zero). Users
asked for their level back; a published "fix" boosts quiet inputs to a fixed
RMS, which amplifies noise floors and still divides by zero on silence.

Our contract (docs/level-contract.md, tested with hypothesis in
tests/test_properties_level.py and tests/test_properties_pipeline.py):

Where level is measured
    On the mono mix at 48 kHz (the signal the model sees, before its
    normalisation), over the segment's own samples (no padding), with the mean
    removed, in float64. Peak = max |x - mean|; RMS = sqrt(mean((x - mean)^2)).

Silence
    An input is *silent* when its peak is at or below ``SILENCE_PEAK`` (1e-5,
    i.e. -100 dBFS). Digital zero, DC-only and denormal inputs are silent. A
    silent input yields digital silence of the right length without running
    the model, in every mode.

``faithful`` mode
    Exactly the original: the model sees ``0.5 * (x - mean) / (max|x - mean| + 1e-8)``
    and the output is ``0.5 * y / max|y|`` minus its mean -- except that an
    all-zero ``y`` stays all-zero instead of becoming NaN.

``preserve`` mode (default of ``enhance``)
    The model still sees the normalised input (it was trained on peak 0.5).
    The output is then scaled so its RMS equals the input's RMS. Why RMS of
    the whole band: it is what a listener compares, it is defined for every
    non-silent input, and it does not depend on the cutoff estimate. Two
    bounds apply: the gain is at most ``MAX_GAIN`` (4x, +12 dB) above simply
    undoing the input normalisation, so a near-silent model output is never
    blown up into noise; and the sample peak never exceeds ``PEAK_LIMIT``
    (1.0): a louder result is scaled down as a whole (no clipping, no
    limiter distortion).

In both modes the output is finite: a non-finite model output raises
``AudioSRError`` instead of being written.
"""

from __future__ import annotations

import numpy as np

from audiosr_model.dsp.postprocess import faithful_output_level
from audiosr_model.dsp.waveform import normalize_wav, numpy1_mean
from audiosr_model.errors import AudioSRError

SILENCE_PEAK = 1e-5  # -100 dBFS sample peak of the mean-removed input
SILENCE_DBFS = -100.0
NORMALISE_EPS = 1e-8  # the original adds it to the peak before dividing
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
    """The original's input normalisation, bit for bit (:func:`model.audio.normalize_wav`).

    ``0.5 * (x - mean) / (max|x - mean| + 1e-8)`` on float32. Two guards the
    original lacks: an empty input returns an empty array, and an input so
    large that the float32 mean overflows (|x| around 1e34 and up, only
    possible in float files) is normalised in float64 instead of becoming
    NaN. Everything else is the original's arithmetic.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        return x.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        y = normalize_wav(x)
    if np.isfinite(y).all() or not np.isfinite(x).all():
        return y
    c = x.astype(np.float64)
    c = c - c.mean()
    return (0.5 * c / (np.max(np.abs(c)) + NORMALISE_EPS)).astype(np.float32)


def input_gain(x: np.ndarray) -> float:
    """The factor ``normalize_input`` multiplies the (mean-removed) input by: ``0.5 / (peak + 1e-8)``."""
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        top = float(np.max(np.abs(x - numpy1_mean(x))))
    if not np.isfinite(top):
        top = peak(x)
    return 0.5 / (top + NORMALISE_EPS)


def _check_finite(y: np.ndarray) -> None:
    if not np.isfinite(y).all():
        raise AudioSRError("the model produced NaN or Inf samples (broken weights or numerical overflow)")


def faithful_output(y: np.ndarray) -> np.ndarray:
    """``0.5 * y / max|y|`` then mean removal, per row, as the original; all-zero stays all-zero.

    Same arithmetic as :func:`model.postprocess.faithful_output_level` (mean
    rounded as numpy 1.x does).
    """
    y = np.asarray(y, dtype=np.float32)
    _check_finite(y)
    if y.size == 0:
        return y.copy()
    return np.asarray(faithful_output_level(y), dtype=np.float32)


def preserve_output(y: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, dict]:
    """Scale the model output ``y`` to the RMS of ``reference`` (the 48 kHz mono input).

    ``gain = rms(reference) / rms(y)``, lowered to ``MAX_GAIN / input_gain(reference)``
    if above it, then lowered further so that ``max|y * gain| <= PEAK_LIMIT``.
    ``y`` is mean-removed first. A zero ``y`` or a zero-RMS reference gives
    zeros. Returns the scaled float32 output and a dict describing what was
    applied (target_rms, model_rms, gain, capped, limited).
    """
    y = np.asarray(y, dtype=np.float64)
    _check_finite(y)
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
