"""Post-processing after generation: put the known low band back, set the output level.

Re-implements the tail of the original ``LatentDiffusion.generate_batch``
(``audiosr/latent_diffusion/models/ddpm.py``):

- :func:`mel_replace` = ``mel_replace_ops`` (torch): below the input's cut-off
  mel bin, the generated mel is replaced by the low-passed input's mel;
- :func:`stft_replace_postprocess` = ``postprocessing`` for one item (numpy):
  below the input's cut-off STFT bin, the vocoder output's STFT is replaced by
  the low-passed input's STFT (scaled by a clamped energy ratio);
- :func:`faithful_output_level`: ``0.5 * w / max|w|`` then mean removal.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from audiosr_model.dsp.features import librosa_istft, librosa_stft
from audiosr_model.dsp.lowpass import cutoff_index_np, locate_cutoff_bin
from audiosr_model.dsp.waveform import numpy1_mean, numpy1_sum

ENERGY_RATIO_MIN = 0.8
ENERGY_RATIO_MAX = 1.2


def mel_replace(mel_out: Tensor, lowpass_mel: Tensor) -> Tensor:
    """``mel_replace_ops``: ``mel_out [B, 1, T, F]``, ``lowpass_mel [B, T, F]`` or ``[B, 1, T, F]``.

    Per item, the cut-off bin is :func:`locate_cutoff_bin` of
    ``exp(lowpass_mel[i])`` (a ``[T, F]`` magnitude; 0.985 of the energy), and
    bins ``[:cutoff]`` of ``mel_out[i]`` are taken from ``lowpass_mel[i]``.

    In the original the condition reaches this function as ``[B, T, F]`` (the
    batch stores ``lowpass_mel`` without a channel axis); a ``[B, 1, T, F]``
    tensor is accepted and its channel axis dropped, which gives the same
    numbers. Unlike the original (which writes into ``samples`` in place) this
    returns a new tensor and leaves ``mel_out`` untouched.
    """
    out = mel_out.clone()
    for i in range(out.size(0)):
        cond = lowpass_mel[i]
        if cond.dim() == 3:
            if cond.size(0) != 1:
                raise ValueError(f"lowpass_mel item has shape {tuple(cond.shape)}; expected [T, F] or [1, T, F]")
            cond = cond[0]
        cutoff = locate_cutoff_bin(torch.exp(cond))
        out[i][..., :cutoff] = cond[..., :cutoff]
    return out


def _energy_ratio(stft_gt: np.ndarray, stft_out: np.ndarray, cutoff: int):
    """Magnitude sum of the cut-off bin, input over output, clamped to [0.8, 1.2].

    Float32 sums and quotient as in the original (sums rounded as numpy 1.x). The clamp is the original's
    ``min(max(r, 0.8), 1.2)`` with the comparisons done in float64 (numpy 1.x
    compares a float32 scalar with a Python float in float64; numpy 2 would
    round 0.8 / 1.2 to float32 first). NaN (0/0: silent output at that bin)
    passes through the clamp unchanged, as in the original.
    """
    # a row of the (Fortran-ordered) STFT: np.abs makes it contiguous, numpy 1.x sums it in 8192 chunks
    ratio = np.mean(numpy1_sum(np.abs(stft_gt[cutoff])) / numpy1_sum(np.abs(stft_out[cutoff, ...])))
    if ENERGY_RATIO_MIN > float(ratio):
        ratio = ENERGY_RATIO_MIN
    if ENERGY_RATIO_MAX < float(ratio):
        ratio = ENERGY_RATIO_MAX
    return ratio


def stft_replace_postprocess(out: np.ndarray, x_lowpass: np.ndarray) -> np.ndarray:
    """The original ``postprocessing`` for one item: ``out [N]`` (vocoder, float32), ``x_lowpass [M]``.

    ``cutoff = cutoff_index_np(x_lowpass)``; librosa 0.9.2 STFTs (2048 / 512)
    of both; STFT bins ``[:cutoff]`` of ``out`` are replaced by those of
    ``x_lowpass`` divided by the clamped energy ratio of bin ``cutoff``; then
    ISTFT back to ``N`` samples. Returns a new float32 array of length ``N``.
    Both signals must give the same number of STFT frames (``1 + len // 512``),
    which holds in the pipeline where both are ``48000 * padded duration`` long.
    """
    out = np.asarray(out)
    x = np.asarray(x_lowpass)
    cutoff = cutoff_index_np(x)
    length = out.shape[0]
    stft_gt = librosa_stft(x)
    stft_out = librosa_stft(out)
    if stft_gt.shape != stft_out.shape:
        raise ValueError(
            f"output ({length} samples) and low-pass input ({x.shape[0]} samples) give different STFT shapes"
        )
    ratio = _energy_ratio(stft_gt, stft_out, cutoff)
    # complex64 / (Python float or float32): same complex64 division as numpy 1.x
    stft_out[:cutoff, ...] = stft_gt[:cutoff, ...] / ratio
    return librosa_istft(stft_out, length=length)


def faithful_output_level(w: np.ndarray) -> np.ndarray:
    """Final level of ``generate_batch``: ``0.5 * w / max|w|`` then subtract the mean, per row.

    Works on ``[..., N]`` (float32 stays float32). Deviation, documented: the
    original divides by zero for an all-zero row (giving NaN); here such a row
    stays all zeros. The mean is rounded as numpy 1.x does (:func:`numpy1_mean`).
    """
    w = np.asarray(w)
    max_amp = np.max(np.abs(w), axis=-1)
    max_amp = np.where(max_amp == 0, np.ones_like(max_amp), max_amp)
    w = 0.5 * w / max_amp[..., None]
    mean_amp = np.asarray(numpy1_mean(w))[..., None]
    return w - mean_amp
