"""The waveform preparation of the original ``read_wav_file``, and the model's sample-rate facts.

Arrays here are numpy (float32 unless stated). The original
(``audiosr/utils.py``) does, per input file::

    waveform, sr = torchaudio.load(filename)            # float32 [C, N]
    duration = N / sr
    pad_duration = duration + (5.12 - duration % 5.12)  # unless duration % 5.12 == 0
    target_frame = int(pad_duration * 100)
    waveform = torchaudio.functional.resample(waveform, sr, 48000)
    waveform = waveform.numpy()[0, ...]                 # first channel only
    waveform = normalize_wav(waveform)
    waveform = pad_wav(waveform[None], int(48000 * pad_duration))  # asserts > 100 samples

The pieces are provided separately (:func:`to_mono`, :func:`normalize_wav`,
:func:`padded_duration`, :func:`target_frames`, :func:`target_samples`,
:func:`pad_wav`) so the pipeline composes them and the parity tests can check
each one; reading the file is `audiosr_model.io.audio_file.read_audio`.

This module is the one home of `SAMPLE_RATE` (48 kHz, the model's rate),
`MIN_SAMPLES` (101: the original asserts more than 100 samples at 48 kHz) and
`samples_at_48k` (an input's output length); the pipeline, the readers and
the long-file path import them from here.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 48000  # the model's rate: every input is resampled to it, every output is at it
SEGMENT_SECONDS = 5.12
# The original asserts `waveform_length > 100` (pad_wav) on the 48 kHz signal.
MIN_SAMPLES = 101


def samples_at_48k(frames: int, rate: int) -> int:
    """Length of the output for ``frames`` at ``rate``: round(duration x 48000)."""
    return int(round(frames * SAMPLE_RATE / rate))


def to_mono(x: np.ndarray, mode: str = "mean") -> np.ndarray:
    """``[channels, samples] -> [samples]``.

    ``mode="first"`` is the faithful choice: the original keeps channel 0 only
    (``waveform.numpy()[0, ...]`` in ``read_wav_file``) and drops the rest.
    ``mode="mean"`` averages the channels (float32), which keeps content that
    is only in other channels. A 1-D input is returned unchanged.
    """
    x = np.asarray(x)
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise ValueError(f"expected [channels, samples], got shape {x.shape}")
    if mode == "first":
        return x[0]
    if mode == "mean":
        # summed in float64: finite float32 samples near +-3.4e38 would overflow a float32 sum
        mean = x.mean(axis=0, dtype=np.float64)
        return mean.astype(np.float32) if x.dtype == np.float32 else mean
    raise ValueError(f"unknown mono mode {mode!r}; use 'mean' or 'first'")


# numpy 1.x reduced a contiguous axis in chunks of the nditer buffer size
# (8192 elements): a pairwise sum inside each chunk, chunks added one after
# another. numpy >= 2.3 sums the whole axis pairwise, which rounds differently
# for long signals (~1 ulp of a float32 mean; visible in scipy's firwin scale
# too). The original ran on numpy 1.23.
_NUMPY1_REDUCE_BLOCK = 8192


def numpy1_sum(x: np.ndarray) -> np.ndarray:
    """``np.sum(x, axis=-1)`` of a C-contiguous array rounded as numpy 1.x computes it.

    Chunk sums of 8192 elements (pairwise, as numpy does within a chunk; numpy
    2 gives the same within one chunk), then a sequential running sum of the
    chunk sums. Same dtype as ``x``; a numpy scalar for 1-D input.
    """
    x = np.asarray(x)
    n = x.shape[-1]
    rows = np.ascontiguousarray(x).reshape(-1, n)
    full = n // _NUMPY1_REDUCE_BLOCK
    parts = [np.zeros((rows.shape[0], 1), dtype=x.dtype)]
    if full:
        blocks = rows[:, : full * _NUMPY1_REDUCE_BLOCK].reshape(rows.shape[0], full, _NUMPY1_REDUCE_BLOCK)
        parts.append(blocks.sum(axis=-1))
    if n % _NUMPY1_REDUCE_BLOCK:
        parts.append(rows[:, full * _NUMPY1_REDUCE_BLOCK :].sum(axis=-1, keepdims=True))
    total = np.cumsum(np.concatenate(parts, axis=1), axis=1)[:, -1]  # cumsum is sequential
    return total.reshape(x.shape[:-1])[()]


def numpy1_mean(x: np.ndarray) -> np.ndarray:
    """``np.mean(x, axis=-1)`` rounded as numpy 1.x computes it (same dtype as ``x``).

    :func:`numpy1_sum` divided by the count the way numpy 1.x ``_mean`` does.
    Returns a numpy scalar for 1-D input, an array ``x.shape[:-1]`` otherwise.
    """
    x = np.asarray(x)
    n = x.shape[-1]
    total = numpy1_sum(x)
    if x.ndim == 1:
        # numpy 1.x `_mean`, scalar result: `ret.dtype.type(ret / rcount)` (float64 quotient)
        return x.dtype.type(np.float64(total) / n)
    # array result: `true_divide(ret, rcount, out=ret)` in the array's dtype
    return (total / x.dtype.type(n)).astype(x.dtype)


def normalize_wav(x: np.ndarray) -> np.ndarray:
    """The original ``normalize_wav``: remove the mean, peak-normalise to 0.5.

    ``(x - mean) / (max|x - mean| + 1e-8) * 0.5`` on float32 input, float32 out.

    The original ran under numpy 1.x, where ``np.float32 + 1e-8`` (two scalars)
    is promoted to float64 and the divisor is then cast back to float32 for the
    float32 array division. Under numpy 2 (NEP 50) the same expression would
    stay in float32; we compute the divisor in float64 explicitly, and the mean
    with :func:`numpy1_mean`, so the result is the original's on either numpy.
    """
    x = np.asarray(x)
    x = x - numpy1_mean(x)
    peak = np.float64(np.max(np.abs(x))) + 1e-8
    x = x / x.dtype.type(peak)
    return x * 0.5


def padded_duration(duration_s: float) -> float:
    """Duration rounded up to a multiple of 5.12 s with the original's float arithmetic.

    Kept verbatim (``duration % 5.12`` on Python floats), including its quirks:
    ``15.36 % 5.12 == 5.119999999999999`` (not 0), so 15.36 s takes the
    "pad" branch (the sum rounds back to 15.36), and some short inputs come out
    as ``5.119999999999999`` (e.g. 532 samples at 8 kHz), for which
    :func:`target_frames` is 511 and :func:`target_samples` 245759, not 512 and
    245760 -- the original does exactly this.
    ``duration_s`` is ``num_samples / sample_rate`` at the *input* rate.
    """
    if duration_s % SEGMENT_SECONDS != 0:
        return duration_s + (SEGMENT_SECONDS - duration_s % SEGMENT_SECONDS)
    return duration_s


def target_frames(pad_duration: float) -> int:
    """Mel frames of the padded input: ``int(pad_duration * 100)`` (10 ms hop), as the original."""
    return int(pad_duration * 100)


def target_samples(pad_duration: float) -> int:
    """48 kHz samples of the padded input: ``int(48000 * pad_duration)``, as the original."""
    return int(SAMPLE_RATE * pad_duration)


def pad_wav(x: np.ndarray, target_length: int) -> np.ndarray:
    """Zero-pad ``x [..., N]`` at the end to ``[..., target_length]`` (float32), as the original.

    Returns ``x`` itself when it already has the target length (the original
    does the same). Raises ``ValueError`` if ``N <= 100`` (the original's
    assertion; :func:`read_audio` rejects such inputs earlier with a clear
    message) or if ``N > target_length`` (the original fails there too, on a
    broadcast; it cannot happen with :func:`target_samples`).
    """
    n = x.shape[-1]
    if n < MIN_SAMPLES:
        raise ValueError(f"waveform is too short: {n} samples (need more than {MIN_SAMPLES - 1})")
    if n == target_length:
        return x
    if n > target_length:
        raise ValueError(f"waveform has {n} samples, more than the target {target_length}")
    out = np.zeros(x.shape[:-1] + (target_length,), dtype=np.float32)
    out[..., :n] = x
    return out


__all__ = ["MIN_SAMPLES", "SAMPLE_RATE", "SEGMENT_SECONDS", "normalize_wav", "numpy1_mean", "numpy1_sum", "pad_wav",
           "padded_duration", "samples_at_48k", "target_frames", "target_samples", "to_mono"]
