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
(and ``--mix mean|first``) keeps its exact numbers. A batch of channels runs
`pipeline.generate_many` with the channels' draw (`_same_draw`), under the
same stage hook as a mono segment or a batch of chunks: the same timings and
the same stage-scoped memory policy.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from audiosr_model.dsp import level
from audiosr_model.pipeline import (
    MIN_SAMPLES,
    Prepared,
    Randomness,
    SegmentResult,
    StageHook,
    StepCallback,
    enhance_segment,
    finish_segment,
    generate_many,
    no_stages,
    prepare_segment,
)

DEFAULT_CHANNEL_BATCH = 2  # network memory grows with the batch: stereo in one pass, more channels in pairs


def _same_draw(rng: Randomness) -> Callable[[tuple[int, ...]], torch.Tensor]:
    """Noise of shape [B, ...]: the draw a mono run makes ([1, ...]) repeated for every channel."""

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        shape = tuple(shape)
        return rng.randn((1,) + shape[1:]).expand(shape).contiguous()

    return draw


def generate_batch(net, preps: list[Prepared], rng: Randomness, steps: int, guidance_scale: float,
                   on_step: StepCallback | None = None) -> list[np.ndarray]:
    """`pipeline.generate` for several channels of one segment at once; post-processed waveforms.

    Kept for one release: `pipeline.generate_many` with ``draw=_same_draw(rng)`` is what runs.
    """
    outs = generate_many(net, preps, [rng] * len(preps), steps, guidance_scale, on_step, draw=_same_draw(rng))
    return [g.postprocessed for g in outs]


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
    *,
    stages: StageHook = no_stages,
) -> list[SegmentResult]:
    """Enhance each row of ``channels48`` ([C, N] at 48 kHz) as its own mono segment; C results.

    ``stages`` is the pipeline's stage hook (`pipeline.no_stages` by default).
    """
    channels48 = np.asarray(channels48, dtype=np.float32)
    if channels48.ndim == 1:
        channels48 = channels48[None]
    if level_mode not in level.LEVEL_MODES:
        return [enhance_segment(net, channels48[0], duration, Randomness(seed), steps, guidance_scale,
                                level_mode, filter_type, on_step, stages=stages)]  # raises the one-line error
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
                                     level_mode, filter_type, on_step, stages=stages)
        active = []
    for start in range(0, len(active), max(1, batch)):
        group = active[start : start + max(1, batch)]
        if len(group) == 1:
            c = group[0]
            results[c] = enhance_segment(net, channels48[c], duration, Randomness(seed), steps, guidance_scale,
                                         level_mode, filter_type, on_step, stages=stages)
            continue
        rngs = [Randomness(seed) for _ in group]
        preps = [prepare_segment(channels48[c], duration, r, filter_type, stages=stages) for c, r in zip(group, rngs)]
        outs = generate_many(net, preps, rngs, steps, guidance_scale, on_step, draw=_same_draw(rngs[0]),
                             stages=stages)
        for c, prep, out in zip(group, preps, outs):
            results[c] = finish_segment(out.postprocessed, channels48[c], prep, level_mode, stages=stages)
    return results  # type: ignore[return-value]


__all__ = ["DEFAULT_CHANNEL_BATCH", "enhance_channels", "generate_batch"]
