"""End-to-end super-resolution: waveform (any rate) -> 48 kHz waveform.

Data flow of one segment (each arrow is a function of its own module):

    mono 48 kHz -> normalise -> pad to 5.12 s multiple -> mel/STFT
    -> cutoff -> low-pass copy -> its mel -> condition latent
    -> DDIM with guidance -> decode -> mel replacement below the cutoff
    -> vocoder -> STFT replacement below the cutoff -> output level -> trim

Randomness: a `Randomness` object holds a numpy RandomState (filter choice)
and a torch Generator (latent draws). Seeded with the same integer, it
consumes numbers in the original's order (ORACLE.md), so ``faithful`` runs
can be compared with the original's seed-for-seed.

Long inputs are cut into overlapping chunks that are enhanced one by one and
cross-faded (`long_audio`), so memory does not grow with duration.

Instrumentation: every stage is marked by calling a hook, ``stages(name,
*networks)``, that returns a context manager (``networks``: the modules whose
weights the stage runs). The default, `no_stages`, does nothing; the product
(`long_audio`) passes `audiosr_model.runtime.stages.stage` (wall times and the
stage-scoped memory policy). This module, like the maths below it, imports
nothing of `audiosr_model.runtime` or `audiosr_model.io` (tests/test_layout.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, ContextManager

import numpy as np
import torch

from audiosr_model.dsp import features, level, lowpass, postprocess
from audiosr_model.dsp.waveform import MIN_SAMPLES, SAMPLE_RATE, pad_wav, padded_duration
from audiosr_model.errors import AudioSRError
from audiosr_model.nets.latent_diffusion import LatentDiffusion
from audiosr_model.sampling.ddim import DDIMStep, ddim_sample, guided_denoiser
from audiosr_model.sampling.schedule import make_ddim_schedule

SEGMENT_FRAMES = 512  # mel frames in 5.12 s, the unit inputs are padded to

StageHook = Callable[..., ContextManager[None]]  # stages(name, *networks): a context manager around the stage
Draw = Callable[[tuple], torch.Tensor]  # noise of a [B, ...] shape for a batch of segments
_NOOP = contextlib.nullcontext()


def no_stages(name: str, *networks) -> ContextManager[None]:
    """The default stage hook: nothing measured, no memory policy."""
    return _NOOP


@dataclass
class Randomness:
    """Explicit random state, consumed in the original's order."""

    seed: int
    numpy: np.random.RandomState = field(init=False)
    torch: torch.Generator = field(init=False)

    def __post_init__(self):
        self.numpy = np.random.RandomState(self.seed)
        self.torch = torch.Generator().manual_seed(self.seed)

    def choose_filter(self) -> str:
        # np.random.choice over the list, as `lowpass_filtering_prepare_inference`
        return str(self.numpy.choice(list(lowpass.FILTER_TYPES)))

    def randn(self, shape) -> torch.Tensor:
        return torch.randn(tuple(shape), generator=self.torch)


@dataclass
class Prepared:
    """Everything preprocessing produces for one segment (all at 48 kHz)."""

    num_samples: int  # content samples at 48 kHz (before padding)
    pad_duration: float
    target_frames: int
    waveform: np.ndarray  # [1, N_pad] normalised, padded
    log_mel: torch.Tensor  # [T, 256]
    stft: torch.Tensor  # [T, 1024]
    cutoff_hz: float
    filter_type: str
    waveform_lowpass: np.ndarray  # [N_pad]
    lowpass_mel: torch.Tensor  # [T, 256]


def prepare(normalised: np.ndarray, duration: float, rng: Randomness, filter_type: str | None = None) -> Prepared:
    """Pad, analyse and low-pass one normalised 48 kHz mono segment.

    ``duration`` is the input's duration in seconds at its own rate (the
    original pads from it, not from the resampled length).
    """
    pad_dur = padded_duration(duration)
    target_frames = int(pad_dur * 100)
    num_pad = int(SAMPLE_RATE * pad_dur)
    if target_frames % SEGMENT_FRAMES:
        # Float rounding in the original can give 5.119999999999999 s (e.g. 532
        # samples at 8 kHz): 511 frames, which the VAE cannot take and the
        # original crashes on. Use the whole number of segments it meant.
        segments = max(1, round(target_frames / SEGMENT_FRAMES))
        target_frames, num_pad = segments * SEGMENT_FRAMES, segments * SEGMENT_FRAMES * 480
    wave = pad_wav(normalised[None, :].astype(np.float32), num_pad)
    log_mel, stft = features.wav_feature_extraction(torch.from_numpy(wave), target_frames)
    cutoff = lowpass.cutoff_hz_from_stft(stft)
    # The draw happens whether or not the filter is used, to keep the order.
    chosen = rng.choose_filter()
    ftype = filter_type or chosen
    low = lowpass.lowpass_or_passthrough(wave[0], cutoff, SAMPLE_RATE, order=8, ftype=ftype)
    low = np.asarray(low, dtype=np.float32)[: wave.shape[-1]]
    low_mel, _ = features.wav_feature_extraction(torch.from_numpy(low[None, :]), target_frames)
    return Prepared(
        num_samples=normalised.shape[-1],
        pad_duration=pad_dur,
        target_frames=target_frames,
        waveform=wave,
        log_mel=log_mel,
        stft=stft,
        cutoff_hz=float(cutoff),
        filter_type=ftype,
        waveform_lowpass=low,
        lowpass_mel=low_mel,
    )


StepCallback = Callable[[DDIMStep, int], None]


def own_draws(rngs: list[Randomness]) -> Draw:
    """Noise of shape [B, ...]: segment ``i``'s draw ([1, ...]) from its own ``rngs[i]``, in order."""

    def draw(shape) -> torch.Tensor:
        return torch.cat([r.randn((1, *tuple(shape)[1:])) for r in rngs])

    return draw


@dataclass
class Generated:
    latent: torch.Tensor
    mel: torch.Tensor  # decoded, after replacement
    vocoded: np.ndarray  # [M]
    postprocessed: np.ndarray  # [M]


def generate(
    net: LatentDiffusion,
    prep: Prepared,
    rng: Randomness,
    steps: int,
    guidance_scale: float,
    on_step: StepCallback | None = None,
    *,
    stages: StageHook = no_stages,
) -> Generated:
    """The diffusion part of one segment, from prepared features to a waveform: `generate_many`
    with a batch of one (its draws are exactly the original's for one segment)."""
    return generate_many(net, [prep], [rng], steps, guidance_scale, on_step, stages=stages)[0]


@torch.no_grad()
def generate_many(
    net: LatentDiffusion,
    preps: list[Prepared],
    rngs: list[Randomness],
    steps: int,
    guidance_scale: float,
    on_step: StepCallback | None = None,
    *,
    draw: Draw | None = None,
    stages: StageHook = no_stages,
) -> list[Generated]:
    """The diffusion part of several segments of one length in ONE batched pass.

    Segment ``i`` draws from its own ``rngs[i]`` in the original's order (shape
    draw, posterior noise, x_T, then one draw per step), so its result is
    `generate(net, preps[i], rngs[i], ...)` up to the float reassociation of
    batched kernels (tests/test_speed_paths.py). Every network
    (condition encoder, UNet with guidance: twice the batch, VAE decoder,
    vocoder) sees the whole batch: fewer, larger calls, which a GPU runs far
    better than one segment at a time; memory grows with the batch.

    ``draw`` replaces those draws (the same order, the whole batch at once):
    the channels of one segment (`audio_channels`) each get their mono run's
    draw, repeated. ``stages`` is the stage hook (see the module notes); the
    DDIM loop is stage ``ddim`` around one ``ddim_step`` per step.
    """
    if len(preps) != len(rngs) or not preps:
        raise ValueError("generate_many needs one Randomness per prepared segment")
    if len({p.target_frames for p in preps}) != 1:
        raise ValueError("generate_many needs segments of one padded length")
    device = net.scale_factor.device
    mel = torch.stack([p.log_mel for p in preps])[:, None].to(device)
    low_mel = torch.stack([p.lowpass_mel for p in preps])[:, None].to(device)

    draw = own_draws(rngs) if draw is None else draw
    shape = net.latent_shape(tuple(mel.shape))
    draw(shape)  # the original samples the first-stage posterior only for its shape
    with stages("condition_encode", net.condition_vae):
        posterior = net.condition_posterior(low_mel)
    cond = posterior.sample(draw(posterior.mean.shape).to(device))
    x_T = draw(shape).to(device)
    sf = net.scale_factor
    denoise = guided_denoiser(net.unet, cond * sf, net.unconditional_latent(cond) * sf, guidance_scale)
    schedule = make_ddim_schedule(net.alphas_cumprod, steps, net.config.diffusion.ddim_eta)
    x = x_T
    with stages("ddim", net.unet):
        sampler = ddim_sample(denoise, x_T, schedule, net.vprediction(), draw)
        for _ in range(len(schedule)):  # ddim_sample yields once per step of the schedule
            with stages("ddim_step"):
                step = next(sampler)
            x = step.x
            if on_step is not None:
                on_step(step, len(schedule))
    with stages("vae_decode", net.first_stage_model.post_quant_conv, net.first_stage_model.decoder):
        decoded = net.decode(x)
    with stages("postprocess"):
        replaced = postprocess.mel_replace(decoded, low_mel)
    with stages("vocoder", net.first_stage_model.vocoder):
        waves = net.vocode(replaced)[:, 0].float().cpu().numpy()
    with stages("postprocess"):
        return [Generated(latent=x[i:i + 1], mel=replaced[i:i + 1], vocoded=w,
                          postprocessed=np.asarray(postprocess.stft_replace_postprocess(w, p.waveform_lowpass),
                                                   np.float32))
                for i, (w, p) in enumerate(zip(waves, preps))]


@dataclass
class SegmentResult:
    waveform: np.ndarray  # [num_samples] at 48 kHz, final level
    silent: bool
    cutoff_hz: float | None = None
    filter_type: str | None = None
    level_info: dict = field(default_factory=dict)


def enhance_segment(
    net: LatentDiffusion,
    mono48: np.ndarray,
    duration: float,
    rng: Randomness,
    steps: int = 50,
    guidance_scale: float = 3.5,
    level_mode: str = "preserve",
    filter_type: str | None = None,
    on_step: StepCallback | None = None,
    *,
    stages: StageHook = no_stages,
) -> SegmentResult:
    """Enhance one mono 48 kHz segment; returns exactly ``len(mono48)`` samples."""
    if check_segment(mono48, level_mode):
        return SegmentResult(np.zeros(mono48.shape[-1], dtype=np.float32), silent=True)
    prep = prepare_segment(mono48, duration, rng, filter_type, stages=stages)
    out = generate(net, prep, rng, steps, guidance_scale, on_step, stages=stages).postprocessed
    return finish_segment(out, mono48, prep, level_mode, stages=stages)


def check_segment(mono48: np.ndarray, level_mode: str) -> bool:
    """`enhance_segment`'s input checks (one-line errors); True when the segment is silent."""
    if level_mode not in level.LEVEL_MODES:
        raise AudioSRError(f"unknown level mode {level_mode!r}; use {' or '.join(level.LEVEL_MODES)}")
    n = mono48.shape[-1]
    if n < MIN_SAMPLES:
        raise AudioSRError(f"input too short: {n} samples at 48 kHz (need at least {MIN_SAMPLES})")
    return bool(level.is_silent(mono48))


def prepare_segment(mono48: np.ndarray, duration: float, rng: Randomness, filter_type: str | None, *,
                    stages: StageHook = no_stages) -> Prepared:
    """The original's normalisation (same bits as waveform.normalize_wav, plus guards), then `prepare`."""
    with stages("features"):
        return prepare(level.normalize_input(mono48), duration, rng, filter_type)


def finish_segment(out: np.ndarray, mono48: np.ndarray, prep: Prepared, level_mode: str, *,
                   stages: StageHook = no_stages) -> SegmentResult:
    """The output level contract on a generated segment, trimmed to the input's length."""
    n = mono48.shape[-1]
    with stages("postprocess"):
        if level_mode == "faithful":
            final, info = level.faithful_output(out), {"mode": "faithful"}
            final = final[:n]
        else:
            final, info = level.preserve_output(out[:n], mono48)
            info["mode"] = "preserve"
        final = np.asarray(final, dtype=np.float32)
    if final.shape[-1] < n:  # never happens with the original's padding; be exact anyway
        final = np.pad(final, (0, n - final.shape[-1]))
    return SegmentResult(final, False, prep.cutoff_hz, prep.filter_type, info)
