"""Spectral front end: the original's mel spectrogram and librosa 0.9.2's STFT/ISTFT.

Without librosa:

- :func:`mel_filterbank` reproduces ``librosa.filters.mel(sr=48000, n_fft=2048,
  n_mels=256, fmin=20, fmax=24000)`` (Slaney scale, Slaney norm, float32),
  including librosa's order of float operations.
- :func:`mel_spectrogram` / :func:`wav_feature_extraction` are
  ``mel_spectrogram_train`` / ``wav_feature_extraction`` of
  ``audiosr/utils.py`` (torch tensors in and out).
- :func:`librosa_stft` / :func:`librosa_istft` are ``librosa.stft`` /
  ``librosa.istft`` of librosa 0.9.2 with the defaults the original uses
  (numpy in and out).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from audiosr_model.config import AudioConfig

_AUDIO = AudioConfig()


# ---------------------------------------------------------------- windows / mel


def hann_periodic_np(n: int) -> np.ndarray:
    """``scipy.signal.get_window("hann", n, fftbins=True)`` as scipy 1.15 computes it (float64).

    scipy's ``general_cosine``: extend to ``n + 1`` points, ``fac = linspace(-pi,
    pi)``, ``w = 0 + 0.5*cos(0*fac) + 0.5*cos(1*fac)``, drop the last point.
    Written out so the window does not depend on the installed scipy version.
    """
    m = n + 1
    fac = np.linspace(-np.pi, np.pi, m)
    w = np.zeros(m)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    return w[:-1]


def _hz_to_mel_slaney(f: float) -> float:
    """librosa ``hz_to_mel(f, htk=False)`` for a scalar (numpy float64 ops, as librosa)."""
    f = np.asanyarray(f, dtype=np.float64) if not isinstance(f, np.ndarray) else f
    f_sp = 200.0 / 3
    mels = (f - 0.0) / f_sp
    min_log_hz = 1000.0
    min_log_mel = (min_log_hz - 0.0) / f_sp
    logstep = np.log(6.4) / 27.0
    if f >= min_log_hz:
        mels = min_log_mel + np.log(f / min_log_hz) / logstep
    return mels


def _mel_to_hz_slaney(mels: np.ndarray) -> np.ndarray:
    """librosa ``mel_to_hz(mels, htk=False)`` for a float64 vector."""
    f_sp = 200.0 / 3
    freqs = 0.0 + f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = (min_log_hz - 0.0) / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


@functools.lru_cache(maxsize=8)
def _mel_filterbank_cached(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    weights = np.zeros((n_mels, int(1 + n_fft // 2)), dtype=np.float32)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    # band edges: n_mels + 2 points equally spaced on the Slaney mel scale
    mel_f = _mel_to_hz_slaney(
        np.linspace(_hz_to_mel_slaney(float(fmin)), _hz_to_mel_slaney(float(fmax)), n_mels + 2)
    )
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        # stored to float32 here, *before* the norm; librosa does the same (double rounding)
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]  # float64 multiply, cast back into float32 in place
    weights.setflags(write=False)
    return weights


def mel_filterbank(
    sr: int = 48000, n_fft: int = 2048, n_mels: int = 256, fmin: float = 20.0, fmax: float = 24000.0
) -> np.ndarray:
    """Slaney mel filterbank ``[n_mels, 1 + n_fft // 2]`` float32, = ``librosa.filters.mel`` (0.9.2).

    Same statements as librosa (htk=False, norm="slaney"); returns a fresh
    writable copy.
    """
    return _mel_filterbank_cached(int(sr), int(n_fft), int(n_mels), float(fmin), float(fmax)).copy()


@functools.lru_cache(maxsize=1)
def _mel_basis_torch() -> Tensor:
    a = _AUDIO
    mel = mel_filterbank(a.sampling_rate, a.filter_length, a.n_mel_channels, a.mel_fmin, a.mel_fmax)
    return torch.from_numpy(mel).float()


# ---------------------------------------------------------------- mel front end


def mel_spectrogram(waveform: Tensor) -> tuple[Tensor, Tensor]:
    """``mel_spectrogram_train``: ``waveform [1, N]`` float32 -> ``(log_mel [256, T], mag [1025, T])``.

    Reflect-pad ``(n_fft - hop) / 2 = 784`` samples on both sides, ``torch.stft``
    with ``center=False``, periodic ``hann_window(2048)``, hop 480, magnitude,
    Slaney mel matrix, ``log(clamp(x, 1e-5))``.
    ``T = 1 + (N + 1568 - 2048) // 480``; N must exceed 784 (reflect padding).
    Like the original this returns item 0 of the batch only.
    """
    a = _AUDIO
    pad = int((a.filter_length - a.hop_length) / 2)
    y = torch.nn.functional.pad(waveform.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        y,
        a.filter_length,
        hop_length=a.hop_length,
        win_length=a.win_length,
        window=torch.hann_window(a.win_length, device=y.device),
        center=False,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    mag = torch.abs(spec)
    mel = torch.log(torch.clamp(torch.matmul(_mel_basis_torch().to(y.device), mag), min=1e-5))
    return mel[0], mag[0]


def pad_spec(spec: Tensor, target_frame: int) -> Tensor:
    """The original ``pad_spec``: zero-pad or cut ``[T, F]`` to ``target_frame`` rows,
    then drop the last column if ``F`` is odd (so the 1025-bin STFT becomes 1024).
    """
    p = target_frame - spec.shape[0]
    if p > 0:
        spec = torch.nn.functional.pad(spec, (0, 0, 0, p))
    elif p < 0:
        spec = spec[0:target_frame, :]
    if spec.size(-1) % 2 != 0:
        spec = spec[..., :-1]
    return spec


def wav_feature_extraction(waveform, target_frame: int) -> tuple[Tensor, Tensor]:
    """``wav_feature_extraction``: ``[1, N]`` (numpy or tensor) -> ``(log_mel [T, 256], stft [T, 1024])``.

    Only channel/row 0 is used, as in the original. ``T = target_frame``.
    """
    w = torch.as_tensor(np.asarray(waveform[0, ...]), dtype=torch.float32)
    log_mel, mag = mel_spectrogram(w.unsqueeze(0))
    return pad_spec(log_mel.T, target_frame), pad_spec(mag.T, target_frame)


# ---------------------------------------------------------------- librosa 0.9.2 STFT


def librosa_stft(x: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """``librosa.stft(x)`` of librosa 0.9.2: ``[..., N] -> complex [..., 1 + n_fft//2, 1 + N//hop]``.

    Defaults as 0.9.2: periodic hann, ``center=True`` with ``pad_mode="constant"``
    (zero padding of ``n_fft // 2``; 0.9.x already uses "constant"), output
    complex64 for float32 input (complex128 for float64), Fortran-ordered as
    librosa allocates it. The windowed frames
    are float64 (float64 window times float32 samples), transformed with
    ``np.fft.rfft`` in double, then stored into the complex64 result, as librosa.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"expected a floating point signal, got {x.dtype}")
    out_dtype = np.complex64 if x.dtype == np.float32 else np.complex128
    window = hann_periodic_np(n_fft)[:, None]
    padding = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
    y = np.pad(x, padding, mode="constant")
    n_frames = 1 + (y.shape[-1] - n_fft) // hop
    # frames as a strided view [..., n_fft, n_frames], like librosa.util.frame
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft, axis=-1)[..., ::hop, :]
    frames = np.swapaxes(frames, -1, -2)[..., :n_frames]
    spec = np.fft.rfft(window * frames, axis=-2)
    # Fortran order like librosa's result, so numpy reductions over time on it
    # (and np.abs of it) behave as in the original
    return np.asfortranarray(spec.astype(out_dtype))


def window_sumsquare(n_frames: int, n_fft: int = 2048, hop: int = 512, dtype=np.float32) -> np.ndarray:
    """librosa 0.9.2 ``filters.window_sumsquare`` for the periodic hann window.

    Squared window (float64) added frame by frame into a ``dtype`` buffer, each
    addition rounded to ``dtype``, in frame order, as librosa's numba loop does.
    """
    n = n_fft + hop * (n_frames - 1)
    x = np.zeros(n, dtype=dtype)
    win_sq = hann_periodic_np(n_fft) ** 2
    for i in range(n_frames):
        s = i * hop
        x[s : min(n, s + n_fft)] += win_sq[: max(0, min(n_fft, n - s))]
    return x


def librosa_istft(S: np.ndarray, length: int | None = None, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """``librosa.istft(S, length=length)`` of librosa 0.9.2: ``[..., F, T] -> [..., length]``.

    Output float32 for complex64 input. Steps as librosa: frames are
    ``irfft`` in double (numpy 1.x upcast complex64 to complex128; numpy 2
    would stay in single precision, so we upcast explicitly), windowed in
    float64, overlap-added frame by frame into a float32 buffer, divided by the
    window sum-square where it exceeds ``tiny(float32)``, then the first
    ``n_fft // 2`` samples are dropped and the result is cut / zero-padded to
    ``length`` (or the tail ``n_fft // 2`` removed when ``length`` is None).
    """
    S = np.asarray(S)
    n_fft = 2 * (S.shape[-2] - 1) if n_fft is None else n_fft
    out_dtype = np.float32 if S.dtype == np.complex64 else np.float64
    if length:
        n_frames = min(S.shape[-1], int(np.ceil((length + int(n_fft)) / hop)))
    else:
        n_frames = S.shape[-1]
    window = hann_periodic_np(n_fft)[:, None]
    frames = window * np.fft.irfft(S[..., :n_frames].astype(np.complex128), n=n_fft, axis=-2)
    y = np.zeros(S.shape[:-2] + (n_fft + hop * (n_frames - 1),), dtype=out_dtype)
    for f in range(n_frames):
        s = f * hop
        y[..., s : s + n_fft] += frames[..., f]
    wss = window_sumsquare(n_frames, n_fft, hop, dtype=out_dtype)
    nonzero = wss > np.finfo(out_dtype).tiny
    y[..., nonzero] /= wss[nonzero]
    start = n_fft // 2
    if length is None:
        return y[..., start:-start]
    y = y[..., start:]
    if y.shape[-1] >= length:
        return y[..., :length]
    pad = [(0, 0)] * (y.ndim - 1) + [(0, length - y.shape[-1])]
    return np.pad(y, pad, mode="constant")
