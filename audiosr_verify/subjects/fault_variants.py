"""The faulty code of the porting-fault catalogue (subjects/faults.py): one function per mistake.

Each function here is what a port would contain instead of the original's
code: a mel front end with another padding or window, an HTK filterbank, a
UNet forward with the skip connection concatenated the other way round...
Each is the reference's code (`audiosr_model`) with exactly ONE change, marked
``# FAULT:``, so the catalogue measures the harness's sensitivity to that one
change and nothing else.
"""

from __future__ import annotations

import math
import types
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------- DSP front end


def mel_spectrogram_variant(*, pad_mode: str = "reflect", center: bool = False, periodic: bool = True) -> Callable:
    """`audiosr_model.dsp.features.mel_spectrogram` with another padding, centring or window."""
    from audiosr_model.dsp import features

    def mel_spectrogram(waveform: torch.Tensor):
        a = features._AUDIO
        y = waveform
        if not center:  # the original pads by hand, (n_fft - hop) / 2 each side, then frames uncentred
            pad = int((a.filter_length - a.hop_length) / 2)
            y = F.pad(y.unsqueeze(1), (pad, pad), mode=pad_mode).squeeze(1)  # FAULT: pad_mode
        spec = torch.stft(y, a.filter_length, hop_length=a.hop_length, win_length=a.win_length,
                          window=torch.hann_window(a.win_length, periodic=periodic),  # FAULT: periodic
                          center=center, pad_mode="reflect", normalized=False, onesided=True,  # FAULT: center
                          return_complex=True)
        mag = torch.abs(spec)
        mel = torch.log(torch.clamp(torch.matmul(features._mel_basis_torch(), mag), min=1e-5))
        return mel[0], mag[0]

    return mel_spectrogram


def htk_mel_basis() -> torch.Tensor:
    """The filterbank of ``torchaudio.transforms.MelSpectrogram`` (HTK mel scale, no area norm), 256 x 1025.

    FAULT: the original uses librosa's Slaney scale with Slaney (area) normalisation.
    """
    from audiosr_model.config import AudioConfig

    a = AudioConfig()
    freqs = np.fft.rfftfreq(a.filter_length, 1.0 / a.sampling_rate)

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(a.mel_fmin), hz_to_mel(a.mel_fmax), a.n_mel_channels + 2))
    lower = (freqs[None, :] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    upper = (edges[2:, None] - freqs[None, :]) / np.diff(edges)[1:, None]
    return torch.from_numpy(np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32))


def resample_polyphase(waveform: torch.Tensor, orig_freq: int, new_freq: int) -> torch.Tensor:
    """``scipy.signal.resample_poly`` (Kaiser-windowed FIR) instead of torchaudio's Hann-windowed sinc.

    FAULT: another resampling kernel; the output length is the same ceil(N * new / orig).
    """
    from scipy.signal import resample_poly

    if orig_freq == new_freq:
        return waveform
    g = math.gcd(int(orig_freq), int(new_freq))
    out = resample_poly(waveform.double().numpy(), int(new_freq) // g, int(orig_freq) // g, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(out)).to(waveform.dtype)


def cutoff_with_percentile(percentile: float) -> Callable[[Callable], Callable]:
    """`locate_cutoff_bin` called with another energy percentile (utils.py's default 0.97 for 0.985)."""

    def make(old):
        return lambda stft_mag, p=None: old(stft_mag, percentile)  # FAULT: the percentile

    return make


def lowpass_with_order(fault_order: int) -> Callable[[Callable], Callable]:
    """`lowpass_or_passthrough` with another filter order (the caller's 8 ignored)."""

    def make(old):
        def lowpass_or_passthrough(x, highcut_hz, fs=48000, order=8, ftype="butter"):
            return old(x, highcut_hz, fs, fault_order, ftype)  # FAULT: the order

        return lowpass_or_passthrough

    return make


# --------------------------------------------------------------------------- UNet


def attention_forward(*, softmax_dim: int = -1) -> Callable:
    """`audiosr_model.nets.attention.Attention.forward` with the softmax over another axis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q = self._split_heads(self.to_q(x))
        k = self._split_heads(self.to_k(x))
        v = self._split_heads(self.to_v(x))
        sim = torch.einsum("bid,bjd->bij", q, k) * self.scale
        attn = sim.softmax(dim=softmax_dim)  # FAULT: softmax_dim (the original: -1, over the keys)
        out = torch.einsum("bij,bjd->bid", attn, v)
        out = out.reshape(b, self.heads, n, -1).permute(0, 2, 1, 3).reshape(b, n, -1)
        return self.to_out(out)

    return forward


def unet_forward_skip_first(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """`UNetModel.forward` with the skip connection concatenated BEFORE the upsampled features."""
    from audiosr_model.nets.unet import timestep_embedding

    emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
    hs, h = [], x
    for module in self.input_blocks:
        h = module(h, emb)
        hs.append(h)
    h = self.middle_block(h, emb)
    for module in self.output_blocks:
        h = module(torch.cat([hs.pop(), h], dim=1), emb)  # FAULT: the original is cat([h, skip])
    return self.out(h)


def upsample_forward(mode: str) -> Callable:
    """`audiosr_model.nets.unet.Upsample.forward` with another interpolation mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode=mode))  # FAULT: the original: nearest

    return forward


def bind_on(net, module_type: type, attr: str, function: Callable) -> int:
    """Bind ``function`` as ``attr`` of every ``module_type`` in ``net``; the count bound."""
    n = 0
    for m in net.modules():
        if isinstance(m, module_type):
            setattr(m, attr, types.MethodType(function, m))
            n += 1
    if not n:
        raise AssertionError(f"no {module_type.__name__} in the network")
    return n


# --------------------------------------------------------------------------- diffusion


def guided_denoiser_variant(*, swap_branches: bool = False, conditional_base: bool = False,
                            condition_first: bool = False) -> Callable[[Callable], Callable]:
    """`audiosr_model.sampling.ddim.guided_denoiser` with one of three mistakes.

    ``swap_branches``: the unconditional latent where the conditional one belongs and vice versa;
    ``conditional_base``: ``cond + s (cond - uncond)`` instead of ``uncond + s (cond - uncond)``;
    ``condition_first``: the condition concatenated before x (channels 0-15) instead of after.
    """

    def make(old):
        def guided_denoiser(unet, cond, uncond, guidance_scale):
            if swap_branches:
                cond, uncond = uncond, cond  # FAULT

            def cat(x, c):
                return torch.cat([c, x] if condition_first else [x, c], dim=1)  # FAULT when condition_first

            def denoise(x, t):
                if guidance_scale == 1.0:
                    return unet(cat(x, cond), t)
                out_cond, out_uncond = unet(torch.cat([cat(x, cond), cat(x, uncond)]), torch.cat([t, t])).chunk(2)
                base = out_cond if conditional_base else out_uncond  # FAULT when conditional_base
                return base + guidance_scale * (out_cond - out_uncond)

            return denoise

        return guided_denoiser

    return make


def unet_forward_condition_first(net) -> Callable:
    """`LatentDiffusion.unet_forward` with the condition concatenated before x."""

    def unet_forward(x, t, cond):
        return net.unet(torch.cat([cond * net.scale_factor, x], dim=1), t)  # FAULT: cat([x, cond])

    return unet_forward


class EpsilonPrediction:
    """The UNet's output read as the noise (epsilon) instead of v.

    FAULT: AudioSR is trained with ``parameterization="v"``; a port that keeps
    the LDM default reads the same network output as epsilon.
    """

    def __init__(self, sqrt_alphas_cumprod: torch.Tensor, sqrt_one_minus_alphas_cumprod: torch.Tensor):
        self.sqrt_ac, self.sqrt_1m_ac = sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod

    def eps(self, x_t, t, model_out):
        return model_out

    def x0(self, x_t, t, model_out):
        from audiosr_model.sampling.ddim import extract

        a, s = extract(self.sqrt_ac, t, x_t.ndim), extract(self.sqrt_1m_ac, t, x_t.ndim)
        return (x_t - s * model_out) / a


def float32_schedule_buffers(config) -> dict[str, torch.Tensor]:
    """The 12 schedule buffers with the cosine schedule computed in float32 (the original: float64)."""
    from audiosr_model.sampling.schedule import SCHEDULE_BUFFERS

    n, s = config.timesteps, config.cosine_s
    steps = torch.arange(n + 1, dtype=torch.float32) / n + s  # FAULT: float32
    alphas = torch.cos(steps / (1 + s) * math.pi / 2).pow(2)
    alphas = alphas / alphas[0]
    betas = 1 - alphas[1:] / alphas[:-1]
    ac = torch.cumprod(1.0 - betas, dim=0)
    ac_prev = torch.cat([torch.ones(1), ac[:-1]])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
    values = {
        "betas": betas, "alphas_cumprod": ac, "alphas_cumprod_prev": ac_prev,
        "sqrt_alphas_cumprod": ac.sqrt(), "sqrt_one_minus_alphas_cumprod": (1.0 - ac).sqrt(),
        "log_one_minus_alphas_cumprod": (1.0 - ac).log(), "sqrt_recip_alphas_cumprod": (1.0 / (ac + 1e-10)).sqrt(),
        "sqrt_recipm1_alphas_cumprod": (1.0 / (ac + 1e-10) - 1).sqrt(), "posterior_variance": post_var,
        "posterior_log_variance_clipped": post_var.clamp(min=1e-20).log(),
        "posterior_mean_coef1": betas * ac_prev.sqrt() / (1.0 - ac),
        "posterior_mean_coef2": (1.0 - ac_prev) * (1.0 - betas).sqrt() / (1.0 - ac),
    }
    return {k: values[k].float() for k in SCHEDULE_BUFFERS}


# --------------------------------------------------------------------------- vocoder


def unfold_weight_norm(module: torch.nn.Module) -> int:
    """Every conv weight ``w`` replaced by ``w / ||w||`` (norm over all dims but 0): the direction only.

    FAULT: a port that keeps ``weight_norm`` and loads the checkpoint's folded
    ``weight`` into ``weight_v`` while ``weight_g`` keeps 1 computes exactly this.
    """
    n = 0
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                m.weight.copy_(torch._weight_norm(m.weight, torch.ones_like(m.weight[:, :1, :1]), 0))
                n += 1
    return n


def vocode_dropping_last_frame(net) -> Callable:
    """`LatentDiffusion.vocode` given one mel frame fewer, its output zero-padded to the expected length.

    FAULT: an off-by-one in the frame count (``T - 1``); only the last frame's ~10 ms of each window the
    vocoder makes change, so only an output that reaches the end of a window shows it.
    """
    hop = 480

    def vocode(mel: torch.Tensor) -> torch.Tensor:
        frames = mel.squeeze(1).transpose(1, 2)[..., :-1]  # FAULT: T - 1 frames
        return F.pad(net.first_stage_model.vocoder(frames), (0, hop))

    return vocode


# --------------------------------------------------------------------------- the product around the model
# (channels, silence, the preserve level): code no stage of the schema runs, only `enhance` does


def silence_gate(dbfs: float) -> Callable[[Callable], Callable]:
    """`audiosr_model.dsp.level.is_silent` with a gate at ``dbfs`` (a common -60 dBFS) instead of -100 dBFS."""

    def make(old):
        threshold = 10.0 ** (dbfs / 20.0)
        return lambda x, threshold_=None: old(x, threshold)  # FAULT: the threshold

    return make


def preserve_output_by_peak(y: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, dict]:
    """`audiosr_model.dsp.level.preserve_output` matching the input's sample peak instead of its RMS."""
    from audiosr_model.dsp import level

    y = np.asarray(y, dtype=np.float64)
    level._check_finite(y)
    y = y - y.mean() if y.size else y
    target = level.peak(reference)  # FAULT: the original matches rms(reference) ...
    current = float(np.max(np.abs(y))) if y.size else 0.0  # ... to the output's RMS
    info = {"target_rms": target, "model_rms": current, "limited": False, "capped": False}
    if target == 0.0 or current == 0.0:
        info["gain"] = 0.0
        return np.zeros(y.shape, dtype=np.float32), info
    gain = target / current
    cap = level.MAX_GAIN / level.input_gain(reference)
    if gain > cap:
        gain, info["capped"] = cap, True
    out = y * gain
    top = float(np.max(np.abs(out)))
    if top > level.PEAK_LIMIT:
        gain *= level.PEAK_LIMIT / top
        out = y * gain
        info["limited"] = True
    info["gain"] = gain
    return np.clip(out, -level.PEAK_LIMIT, level.PEAK_LIMIT).astype(np.float32), info


def independent_channel_draws(rng) -> Callable:
    """`audiosr_model.audio_channels._same_draw` drawing each channel of a batch its own noise.

    FAULT: the contract is that each channel gets exactly its mono run's draws (the same draw repeated);
    with fresh draws the second channel of a batch differs from the same channel enhanced alone.
    """
    return lambda shape: rng.randn(tuple(shape))  # FAULT: shape [B, ...] drawn at once


# --------------------------------------------------------------------------- post-processing


def mel_replace_inclusive(mel_out: torch.Tensor, lowpass_mel: torch.Tensor) -> torch.Tensor:
    """`audiosr_model.dsp.postprocess.mel_replace` replacing bins ``[:cutoff + 1]`` (an inclusive slice)."""
    from audiosr_model.dsp.lowpass import locate_cutoff_bin

    out = mel_out.clone()
    for i in range(out.size(0)):
        cond = lowpass_mel[i]
        cond = cond[0] if cond.dim() == 3 else cond
        cutoff = locate_cutoff_bin(torch.exp(cond)) + 1  # FAULT: off by one
        out[i][..., :cutoff] = cond[..., :cutoff]
    return out


def energy_ratio_unclamped(stft_gt: np.ndarray, stft_out: np.ndarray, cutoff: int) -> Any:
    """`audiosr_model.dsp.postprocess._energy_ratio` without the original's clamp to [0.8, 1.2]."""
    from audiosr_model.dsp.waveform import numpy1_sum

    return np.mean(numpy1_sum(np.abs(stft_gt[cutoff])) / numpy1_sum(np.abs(stft_out[cutoff, ...])))  # FAULT


__all__ = [
    "EpsilonPrediction", "attention_forward", "bind_on", "cutoff_with_percentile", "energy_ratio_unclamped",
    "float32_schedule_buffers", "guided_denoiser_variant", "htk_mel_basis", "independent_channel_draws",
    "lowpass_with_order", "mel_replace_inclusive", "mel_spectrogram_variant", "preserve_output_by_peak",
    "resample_polyphase", "silence_gate", "unet_forward_condition_first", "unet_forward_skip_first",
    "unfold_weight_norm", "upsample_forward", "vocode_dropping_last_frame",
]
