"""Channels kept: every channel of a segment enhanced, several in one batched network pass.

Each channel is treated exactly as a mono file holding only that channel
would be (`pipeline.enhance_segment`): its own silence test, normalisation,
cut-off, low-pass copy and level contract, and the same random draws (every
channel uses the seed, so identical channels come back identical). What is
shared is the network: up to ``batch`` non-silent channels go through the
condition encoder, the DDIM loop, the VAE decoder and the vocoder as one
batch (with guidance, the UNet sees twice that), which gives each channel
the numbers of its own mono run up to float reassociation
(tests/test_cli_enhance.py checks it).

A single non-silent channel takes `enhance_segment` itself, so mono input
(and ``--mix mean|first``) keeps its exact numbers.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from audiosr_model import level, postprocess
from audiosr_model.diffusion import ddim_sample, guided_denoiser, make_ddim_schedule
from audiosr_model.pipeline import (
    MIN_SAMPLES,
    Prepared,
    Randomness,
    SegmentResult,
    StepCallback,
    enhance_segment,
    prepare,
)

DEFAULT_CHANNEL_BATCH = 2  # network memory grows with the batch: stereo in one pass, more channels in pairs


def _same_draw(rng: Randomness) -> Callable[[tuple[int, ...]], torch.Tensor]:
    """Noise of shape [B, ...]: the draw a mono run makes ([1, ...]) repeated for every channel."""

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        shape = tuple(shape)
        return rng.randn((1,) + shape[1:]).expand(shape).contiguous()

    return draw


@torch.no_grad()
def generate_batch(net, preps: list[Prepared], rng: Randomness, steps: int, guidance_scale: float,
                   on_step: StepCallback | None = None) -> list[np.ndarray]:
    """`pipeline.generate` for several channels of one segment at once; post-processed waveforms."""
    device = net.scale_factor.device
    mel = torch.stack([p.log_mel for p in preps])[:, None].to(device)
    low_mel = torch.stack([p.lowpass_mel for p in preps])[:, None].to(device)
    draw = _same_draw(rng)
    shape = net.latent_shape(tuple(mel.shape))
    draw(shape)  # the original samples the first-stage posterior only for its shape
    posterior = net.condition_posterior(low_mel)
    cond = posterior.sample(draw(tuple(posterior.mean.shape)).to(device))
    x_T = draw(shape).to(device)
    sf = net.scale_factor
    denoise = guided_denoiser(net.unet, cond * sf, net.unconditional_latent(cond) * sf, guidance_scale)
    schedule = make_ddim_schedule(net.alphas_cumprod, steps, net.config.diffusion.ddim_eta)
    x = x_T
    for step in ddim_sample(denoise, x_T, schedule, net.vprediction(), draw):
        x = step.x
        if on_step is not None:
            on_step(step, len(schedule))
    replaced = postprocess.mel_replace(net.decode(x), low_mel)
    waves = net.vocode(replaced)[:, 0].float().cpu().numpy()
    return [np.asarray(postprocess.stft_replace_postprocess(w, p.waveform_lowpass), np.float32)
            for w, p in zip(waves, preps)]


def _final_level(out: np.ndarray, channel48: np.ndarray, level_mode: str) -> tuple[np.ndarray, dict]:
    """The level contract on one channel: `enhance_segment`'s last step."""
    n = channel48.shape[-1]
    if level_mode == "faithful":
        final, info = level.faithful_output(out)[:n], {"mode": "faithful"}
    else:
        final, info = level.preserve_output(out[:n], channel48)
        info["mode"] = "preserve"
    final = np.asarray(final, dtype=np.float32)
    if final.shape[-1] < n:
        final = np.pad(final, (0, n - final.shape[-1]))
    return final, info


def enhance_channels(
    net,
    channels48: np.ndarray,
    duration: float,
    seed: int,
    steps: int = 50,
    guidance_scale: float = 3.5,
    level_mode: str = "preserve",
    filter_type: str | None = None,
    on_step: StepCallback | None = None,
    batch: int = DEFAULT_CHANNEL_BATCH,
) -> list[SegmentResult]:
    """Enhance each row of ``channels48`` ([C, N] at 48 kHz) as its own mono segment; C results."""
    channels48 = np.asarray(channels48, dtype=np.float32)
    if channels48.ndim == 1:
        channels48 = channels48[None]
    if level_mode not in level.LEVEL_MODES:
        return [enhance_segment(net, channels48[0], duration, Randomness(seed), steps, guidance_scale,
                                level_mode, filter_type, on_step)]  # raises the one-line error
    results: list[SegmentResult | None] = [None] * channels48.shape[0]
    active = []
    for c, x in enumerate(channels48):
        if x.shape[-1] >= MIN_SAMPLES and level.is_silent(x):
            results[c] = SegmentResult(np.zeros(x.shape[-1], dtype=np.float32), silent=True)
        else:
            active.append(c)
    if len(active) == 1:
        c = active[0]
        results[c] = enhance_segment(net, channels48[c], duration, Randomness(seed), steps, guidance_scale,
                                     level_mode, filter_type, on_step)
        active = []
    for start in range(0, len(active), max(1, batch)):
        group = active[start : start + max(1, batch)]
        if len(group) == 1:
            c = group[0]
            results[c] = enhance_segment(net, channels48[c], duration, Randomness(seed), steps, guidance_scale,
                                         level_mode, filter_type, on_step)
            continue
        rngs = [Randomness(seed) for _ in group]
        preps = [prepare(level.normalize_input(channels48[c]), duration, r, filter_type) for c, r in zip(group, rngs)]
        outs = generate_batch(net, preps, rngs[0], steps, guidance_scale, on_step)
        for c, prep, out in zip(group, preps, outs):
            final, info = _final_level(out, channels48[c], level_mode)
            results[c] = SegmentResult(final, False, prep.cutoff_hz, prep.filter_type, info)
    return results  # type: ignore[return-value]


__all__ = ["DEFAULT_CHANNEL_BATCH", "enhance_channels", "generate_batch"]
