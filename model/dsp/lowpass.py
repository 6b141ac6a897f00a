"""Cut-off detection and the low-pass filter that simulates the band-limited input.

The original (``audiosr/utils.py: lowpass_filtering_prepare_inference`` and
``audiosr/lowpass.py``) estimates where the input's spectrum ends, then
low-passes the 48 kHz waveform at that frequency; the result's mel is the
part kept from the input after generation. Functions here:

- :func:`locate_cutoff_bin` / :func:`cutoff_hz_from_stft` (torch): the
  original ``_locate_cutoff_freq`` and the Hz conversion with its "< 1 kHz
  means empty, use 24 kHz" rule;
- :func:`lowpass` (numpy): the original ``lowpass()`` -> ``lowpass_filter()``
  chain, scipy filters, bit-for-bit the same calls;
- :func:`lowpass_or_passthrough`: our pipeline's behaviour at a 24 kHz cut-off;
- :func:`cutoff_index_np` (numpy): the original ``_get_cutoff_index_np``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import special
from scipy.signal import bessel, butter, cheby1, ellip, resample_poly, sosfiltfilt
from torch import Tensor

from audiosr_model.dsp.features import librosa_stft
from audiosr_model.dsp.waveform import numpy1_sum

FILTER_TYPES = ("butter", "cheby1", "ellip", "bessel")
CUTOFF_PERCENTILE = 0.985
STFT_BINS = 1024  # the original divides by 1024 although the STFT has 1025 bins
NYQUIST_HZ = 24000.0
EMPTY_CUTOFF_HZ = 1000.0


def _find_cutoff_torch(energy: Tensor, percentile: float) -> int:
    """``_find_cutoff``: highest index ``k`` in ``[1, F-1]`` with ``energy[k] < energy[-1] * p``, else 0.

    The original scans ``i = 1 .. F-1`` over ``energy[-i]`` and returns
    ``F - i`` at the first hit; index 0 is never tested. The threshold is a
    float32 tensor product, as in the original (torch keeps the dtype).
    """
    threshold = energy[-1] * percentile
    hits = torch.nonzero(energy[1:] < threshold)
    return int(hits.max()) + 1 if hits.numel() else 0


def locate_cutoff_bin(stft_mag: Tensor, percentile: float = CUTOFF_PERCENTILE) -> int:
    """The original ``_locate_cutoff_freq(stft, percentile)`` for ``stft_mag [T, F]``.

    ``|stft|`` summed over time (dim 0), cumulative sum over frequency, then the
    highest bin whose cumulative energy is still below ``percentile`` of the
    total. Note: the ``utils.py`` version defaults to 0.97 but is always called
    with 0.985; the ddpm version defaults to 0.985.
    """
    energy = torch.cumsum(torch.sum(torch.abs(stft_mag), dim=0), dim=0)
    return _find_cutoff_torch(energy, percentile)


def cutoff_hz_from_stft(stft_mag: Tensor, percentile: float = CUTOFF_PERCENTILE) -> float:
    """Cut-off in Hz as ``lowpass_filtering_prepare_inference`` computes it.

    ``bin / 1024 * 24000`` (Python floats); below 1 kHz the audio is treated as
    (almost) empty and 24 kHz is returned, i.e. no low-pass.
    """
    cutoff = (locate_cutoff_bin(stft_mag, percentile) / STFT_BINS) * NYQUIST_HZ
    if cutoff < EMPTY_CUTOFF_HZ:
        cutoff = NYQUIST_HZ
    return cutoff


def _align_length(y: np.ndarray, length: int) -> np.ndarray:
    """The original ``align_length``: zero-pad or cut ``y`` to ``length``."""
    if len(y) == length:
        return y
    if len(y) < length:
        return np.pad(y, (0, length - len(y)), mode="constant")
    return y[:length]


def _design(ftype: str, order: int, hi: float) -> np.ndarray:
    """Second-order sections of the original ``lowpass_filter`` designs."""
    if ftype == "butter":
        return butter(order, hi, btype="low", output="sos")
    if ftype == "cheby1":
        return cheby1(order, 0.1, hi, btype="low", output="sos")
    if ftype == "ellip":
        return ellip(order, 0.1, 60, hi, btype="low", output="sos")
    if ftype == "bessel":
        return bessel(order, hi, btype="low", output="sos")
    raise ValueError(f"unknown filter type {ftype!r}; use one of {', '.join(FILTER_TYPES)}")


def _firwin_kaiser_lowpass(numtaps: int, f_c: float, beta: float = 5.0) -> np.ndarray:
    """``scipy.signal.firwin(numtaps, f_c, window=("kaiser", beta))`` as scipy 1.15 on numpy 1.x.

    Same statements as scipy's ``firwin`` (one low-pass band, ``fs=2``) and
    ``windows.kaiser`` (symmetric). The one change: the DC-gain normaliser
    ``s = sum(h)`` is summed the numpy 1.x way (:func:`numpy1_sum`); numpy 2
    sums long arrays in another order and the taps then differ by an ulp.
    """
    alpha = 0.5 * (numtaps - 1)
    m = np.arange(0, numtaps) - alpha
    left, right = np.float64(0.0), np.float64(f_c)  # bands[0] = [0, f_c]
    h = 0
    h += right * special.sinc(right * m)
    h -= left * special.sinc(left * m)
    n = np.arange(0, numtaps)
    a = (numtaps - 1) / 2.0
    win = special.i0(beta * np.sqrt(1 - ((n - a) / a) ** 2.0)) / special.i0(beta)
    h *= win
    c = np.cos(np.pi * m * 0.0)  # scale at DC: all ones, kept for identical arithmetic
    h /= numpy1_sum(h * c)
    return h


def _resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """``scipy.signal.resample_poly(x, up, down)`` (default kaiser-5 filter) with
    the filter designed by :func:`_firwin_kaiser_lowpass` and passed in as the
    window; scipy uses a given array exactly as its own design (copy, ``*= up``).
    """
    g = math.gcd(up, down)
    max_rate = max(up // g, down // g)
    if max_rate == 1:
        return resample_poly(x, up, down)
    h = _firwin_kaiser_lowpass(2 * (10 * max_rate) + 1, 1.0 / max_rate).astype(x.dtype)
    return resample_poly(x, up, down, window=h)


def _stft_hard_lowpass(x: np.ndarray, ratio: float, fs: int) -> np.ndarray:
    """The original ``stft_hard_lowpass``: polyphase down to ``int(ratio * fs)`` Hz and back up."""
    fs_down = int(ratio * fs)
    y = _resample_poly(x, fs_down, fs)
    y = _resample_poly(y, fs, fs_down)
    return _align_length(y, len(x))


def lowpass(x: np.ndarray, highcut_hz: float, fs: int = 48000, order: int = 8, ftype: str = "butter") -> np.ndarray:
    """The original ``lowpass(data, highcut, fs, order, _type)``; 1-D numpy in, float64 out.

    Steps (as ``lowpass_filter``): order clamped to [2, 10]; cut-off
    ``int(highcut_hz)`` normalised by ``fs / 2``; ``sosfiltfilt``; hard
    band-limit by ``resample_poly`` down to ``int(hi * fs)`` Hz and back;
    ``sosfiltfilt`` again; lengths kept. At ``highcut_hz >= fs / 2`` scipy raises
    ``ValueError`` (normalised cut-off must be < 1), exactly like the original;
    use :func:`lowpass_or_passthrough` to skip filtering instead. The FIR
    filter of the hard band-limit is designed as scipy 1.15 under numpy 1.x
    did (:func:`_firwin_kaiser_lowpass`), so results match the original bitwise.

    The original matches the type with ``_type in "butter"`` (a substring test,
    so e.g. ``"but"`` is accepted); we accept only the exact names.
    """
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"lowpass expects a 1-D signal, got shape {x.shape}")
    if ftype not in FILTER_TYPES:
        raise ValueError(f"unknown filter type {ftype!r}; use one of {', '.join(FILTER_TYPES)}")
    order = min(max(order, 2), 10)  # the original `limit(order, high=10, low=2)`
    order = int(order)
    hi = int(highcut_hz) / (0.5 * fs)
    sos = _design(ftype, order, hi)
    y = _align_length(sosfiltfilt(sos, x), len(x))
    y_len = len(y)
    y = _stft_hard_lowpass(y, hi, fs)
    y = sosfiltfilt(sos, y)
    return _align_length(y, y_len)


def lowpass_or_passthrough(
    x: np.ndarray, highcut_hz: float, fs: int = 48000, order: int = 8, ftype: str = "butter"
) -> np.ndarray:
    """:func:`lowpass`, except that a cut-off at or above Nyquist returns ``x`` unchanged.

    The original would raise there (scipy rejects a normalised cut-off of 1.0),
    which happens whenever the detected cut-off is 24 kHz, e.g. for silent or
    already full-band input. Our pipeline treats that as "nothing to remove".
    The returned array is ``x`` itself in that case (not a copy).
    """
    if int(highcut_hz) >= fs / 2:
        return np.asarray(x)
    return lowpass(x, highcut_hz, fs=fs, order=order, ftype=ftype)


def _find_cutoff_np(energy: np.ndarray, threshold: float) -> int:
    """``_find_cutoff_np``: like :func:`_find_cutoff_torch`, threshold in float64.

    Under numpy 1.x (the original's) ``np.float32 * 0.985`` is a float64
    scalar, so the comparison is float32 energy against a float64 threshold.
    """
    limit = float(energy[-1]) * threshold
    hits = np.nonzero(energy[1:] < limit)[0]
    return int(hits.max()) + 1 if hits.size else 0


def cutoff_index_np(x: np.ndarray) -> int:
    """The original ``_get_cutoff_index_np(x)`` for a 1-D float32 signal.

    librosa 0.9.2 ``stft`` magnitude (2048 / 512, 1025 bins), summed over time,
    cumulative over frequency, 0.985 threshold.
    """
    stft_x = np.abs(librosa_stft(x))
    # librosa's STFT is Fortran-ordered, so numpy reduces over time by adding
    # frame after frame (sequential), not pairwise; cumsum(...)[:, -1] is that sum.
    energy = np.cumsum(np.cumsum(stft_x, axis=-1)[:, -1])
    return _find_cutoff_np(energy, CUTOFF_PERCENTILE)
