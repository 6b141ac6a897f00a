"""Band-limited resampling, the algorithm of ``torchaudio.functional.resample``.

The original reads audio with ``torchaudio.load`` and converts it to 48 kHz
with ``torchaudio.functional.resample(waveform, sr, 48000)`` using the
defaults: ``sinc_interp_hann``, ``lowpass_filter_width=6``, ``rolloff=0.99``.
This module re-implements exactly that (torchaudio 2.11) in plain torch so the
project does not depend on torchaudio. Tensors in, tensors out.

Arithmetic notes (why the code looks the way it does):

- ``functional.resample`` passes ``dtype=waveform.dtype`` to the kernel
  builder, so for float32 input the sinc kernel is computed in *float32*
  (float64 is only used when no dtype is given). We build it the same way,
  with the same expression order, so the kernel is bit-identical.
- ``torch.arange(0, -new, -1)`` is created with ``dtype=dtype`` exactly like
  torchaudio; the time grid is ``arange / new + idx``.
- The convolution is the same ``conv1d(..., stride=orig)`` call on the same
  padded input, so results are bit-identical to torchaudio on the same torch
  build for the kernels it can hold in memory.
- For co-prime rate pairs (e.g. 44101 -> 48000) the kernel has ``new`` rows of
  ``2 * width + orig`` taps; torchaudio materialises it at once (gigabytes).
  Above ``_MAX_KERNEL_ELEMENTS`` we build and apply it in groups of output
  phases instead. Each phase row is computed element-wise as before, so the
  kernel values are unchanged; only the batching of conv1d differs, which may
  change float rounding (conv1d can pick another algorithm for another number
  of output channels). In practice 7919 -> 48000 Hz still matched torchaudio
  bitwise; none of the common rates takes this path.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99

# Phase-chunking threshold (kernel elements); 2**24 floats = 64 MiB.
_MAX_KERNEL_ELEMENTS = 1 << 24
# Above this many dense kernel elements (new phases x taps), almost every tap
# is an exact zero (e.g. 22051 -> 48000 Hz: 15 non-zero taps of 22,065) and
# building the dense kernel takes minutes: evaluate only the non-zero taps.
_SPARSE_ABOVE = 1 << 27
_SPARSE_BLOCK = 1 << 15


def _reduced(orig_freq: int, new_freq: int) -> tuple[int, int]:
    gcd = math.gcd(int(orig_freq), int(new_freq))
    return int(orig_freq) // gcd, int(new_freq) // gcd


def resampled_length(num_samples: int, orig_freq: int, new_freq: int) -> int:
    """Output length of :func:`resample`: ``ceil(new * N / orig)`` on the gcd-reduced rates.

    torchaudio evaluates ``new_freq * length / orig_freq`` as a Python float
    (after gcd reduction), turns it into a default-dtype (float32) tensor and
    takes the ceiling there. We do the same, so the length agrees even where
    float32 rounding drops a fractional part (very long inputs).
    """
    if orig_freq == new_freq:
        return int(num_samples)
    orig, new = _reduced(orig_freq, new_freq)
    return int(torch.ceil(torch.as_tensor(new * int(num_samples) / orig)).long())


def _kernel_width(orig: int, new: int) -> tuple[float, int]:
    base_freq = min(orig, new) * ROLLOFF  # anti-aliasing cutoff, as torchaudio
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / base_freq)
    return base_freq, width


def _sinc_kernel_rows(
    orig: int, new: int, rows: slice, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """Rows ``rows`` (output phases) of torchaudio's hann-windowed sinc kernel.

    Mirrors ``torchaudio.functional.functional._get_sinc_resample_kernel``
    statement by statement (including in-place ops) so the values match bitwise.
    Returns shape ``[len(rows), 1, 2 * width + orig]``.
    """
    base_freq, width = _kernel_width(orig, new)
    idx = torch.arange(-width, width + orig, dtype=dtype, device=device)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=dtype, device=device)[rows][:, None, None] / new + idx
    t *= base_freq
    t = t.clamp_(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = torch.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t *= math.pi
    scale = base_freq / orig
    kernels = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernels *= window * scale
    return kernels


def sinc_kernel(
    orig_freq: int, new_freq: int, dtype: torch.dtype = torch.float32, device=None
) -> tuple[Tensor, int]:
    """The full resampling kernel ``[new, 1, 2*width + orig]`` and ``width`` (reduced rates)."""
    orig, new = _reduced(orig_freq, new_freq)
    device = torch.device("cpu") if device is None else device
    _, width = _kernel_width(orig, new)
    return _sinc_kernel_rows(orig, new, slice(None), dtype, device), width


def resample(waveform: Tensor, orig_freq: int, new_freq: int) -> Tensor:
    """Resample ``waveform [..., N]`` from ``orig_freq`` to ``new_freq`` Hz.

    Same output as ``torchaudio.functional.resample(waveform, orig_freq,
    new_freq)`` with default arguments; output length
    :func:`resampled_length`. Equal rates return the input object unchanged
    (as torchaudio does). Rates must be positive integers; input must be a
    floating-point tensor.
    """
    if int(orig_freq) != orig_freq or int(new_freq) != new_freq:
        raise ValueError(f"sample rates must be integers, got {orig_freq} and {new_freq}")
    if orig_freq <= 0 or new_freq <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_freq} and {new_freq}")
    if not waveform.is_floating_point():
        raise TypeError(f"expected a floating point waveform, got {waveform.dtype}")
    if orig_freq == new_freq:
        return waveform

    orig, new = _reduced(orig_freq, new_freq)
    _, width = _kernel_width(orig, new)

    shape = waveform.size()
    flat = waveform.reshape(-1, shape[-1])
    num_wavs, length = flat.shape
    padded = torch.nn.functional.pad(flat, (width, width + orig))[:, None]

    taps = 2 * width + orig
    phases_per_chunk = max(1, _MAX_KERNEL_ELEMENTS // taps)
    if new * taps > _SPARSE_ABOVE:
        out = _resample_sparse(flat, orig, new)
        return out.view(shape[:-1] + out.shape[-1:])
    if phases_per_chunk >= new:
        kernel = _sinc_kernel_rows(orig, new, slice(None), waveform.dtype, waveform.device)
        out = torch.nn.functional.conv1d(padded, kernel, stride=orig)
    else:
        parts = []
        for start in range(0, new, phases_per_chunk):
            rows = slice(start, min(new, start + phases_per_chunk))
            kernel = _sinc_kernel_rows(orig, new, rows, waveform.dtype, waveform.device)
            parts.append(torch.nn.functional.conv1d(padded, kernel, stride=orig))
        out = torch.cat(parts, dim=1)
    # [wavs, phase, step] -> interleave phases: sample j*new + p comes from phase p of step j
    out = out.transpose(1, 2).reshape(num_wavs, -1)
    out = out[..., : resampled_length(length, orig, new)]
    return out.view(shape[:-1] + out.shape[-1:])


def _resample_sparse(flat: Tensor, orig: int, new: int) -> Tensor:
    """The same windowed-sinc resampling, evaluated on the non-zero taps only.

    Output sample i sits at input position c = i * orig / new; the kernel
    value for input sample n is sinc(pi t) * cos^2(pi t / 12) * base / orig
    with t = (n / orig - i / new) * base, zero for |t| >= 6. This is the
    dense kernel's formula (see `_sinc_kernel_rows`) in float64, so results
    agree with the dense path to float32 rounding, not bit for bit.
    """
    base_freq, width = _kernel_width(orig, new)
    num_wavs, length = flat.shape
    total = resampled_length(length, orig, new)
    x = flat.to(torch.float64)
    offsets = torch.arange(-width - 1, width + 2, dtype=torch.int64)
    out = torch.empty(num_wavs, total, dtype=torch.float64)
    for start in range(0, total, _SPARSE_BLOCK):
        i = torch.arange(start, min(total, start + _SPARSE_BLOCK), dtype=torch.int64)
        centre = (i * orig) // new  # floor(i * orig / new), exact in integers
        n = centre[:, None] + offsets[None, :]
        t = (n.to(torch.float64) / orig - i[:, None].to(torch.float64) / new) * base_freq
        t = t.clamp(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
        window = torch.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
        arg = t * math.pi
        kernel = torch.where(arg == 0, torch.ones_like(arg), torch.sin(arg) / arg) * window * (base_freq / orig)
        valid = (n >= 0) & (n < length)
        samples = x[:, n.clamp(0, length - 1)] * valid
        out[:, start : start + i.shape[0]] = (samples * kernel).sum(-1)
    return out.to(flat.dtype)
