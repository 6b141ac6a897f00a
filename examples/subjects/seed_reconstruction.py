"""A hand-made reconstruction of AudioSR, rebuilt as a subject with exactly its published deviations.

    python -m audiosr_verify check examples/subjects/seed_reconstruction.py:make_subject --json s.json

This project started from a published reconstruction of AudioSR whose author
declared "perfect compatibility, 0 missing keys, identical inference results
expected, 100% confidence". It is rebuilt here on top of the reference
implementation (`audiosr_model`, through `ReferenceSubject`) wherever it
matched the original, with its four deviations and nothing else:

1. the HiFi-GAN upsamplers written out by hand (`hand_written_upsamplers`),
   with ``output_padding=1`` on the stride-5 layer, which the original does
   not have;
2. quiet input "normalised" before the pipeline (`quiet_input_normalisation`):
   if RMS < 0.001, multiply by min(0.05 / (RMS + 1e-8), 1000), then scale the
   peak down to 0.95 if it exceeds it;
3. parameter-free modules added "to fix 151 missing modules"
   (`add_parameter_free_modules`): ``nn.Identity`` ``h_upd``/``x_upd`` in every
   UNet res-block, softmax and dropout modules in attention (the original's
   CLAP attention has them; our network has no CLAP, so they go into the UNet
   attention, which then calls them), and an ``AdaptiveAvgPool1d`` in a CLAP
   audio branch that inference never calls;
4. offline mode through environment variables (``HF_HUB_OFFLINE``,
   ``TRANSFORMERS_OFFLINE``).

What `check` says about each claim, measured, is the worked example in docs/faults.md
(`python benchmarks/bench_seed_reconstruction.py` prints the table).
"""

from __future__ import annotations

import os
import types

# Deviation 4: offline mode through the environment, set at import as the reconstruction did.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from audiosr_verify.subjects.reference import ReferenceSubject  # noqa: E402

QUIET_RMS = 0.001  # below this RMS the input counts as "quiet"
TARGET_RMS = 0.05
MAX_BOOST = 1000.0
PEAK_CEILING = 0.95


# --------------------------------------------------------------------------- deviation 2: quiet input


def quiet_input_normalisation(x: np.ndarray) -> np.ndarray:
    """The reconstruction's step before the pipeline: boost quiet input towards RMS 0.05, peak at most 0.95."""
    x = np.asarray(x, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    if rms < QUIET_RMS:
        x = x * np.float32(min(TARGET_RMS / (rms + 1e-8), MAX_BOOST))
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > PEAK_CEILING:
        x = x * np.float32(PEAK_CEILING / peak)
    return x


# --------------------------------------------------------------------------- deviation 1: the vocoder's upsamplers


def hand_written_upsamplers(c: int) -> nn.ModuleList:
    """The upsampler list as the reconstruction wrote it (``c`` = 1536 in the released model).

    The original builds ConvTranspose1d(c/2^i, c/2^(i+1), k, u, padding=(k-u)//2) for
    (u, k) = (6, 12), (5, 10), (4, 8), (2, 4), (2, 4), with no output padding.
    """
    return nn.ModuleList([
        nn.ConvTranspose1d(c, c // 2, 12, 6, padding=3),
        nn.ConvTranspose1d(c // 2, c // 4, 10, 5, padding=2, output_padding=1),
        nn.ConvTranspose1d(c // 4, c // 8, 8, 4, padding=2),
        nn.ConvTranspose1d(c // 8, c // 16, 4, 2, padding=1),
        nn.ConvTranspose1d(c // 16, c // 32, 4, 2, padding=1),
    ])


# --------------------------------------------------------------------------- deviation 3: parameter-free modules


def _attention_forward(self, x: torch.Tensor) -> torch.Tensor:
    """`audiosr_model.unet.Attention.forward`, calling the added softmax and dropout modules."""
    b, n, _ = x.shape
    q, k, v = (self._split_heads(f(x)) for f in (self.to_q, self.to_k, self.to_v))
    attn = self.attn_drop(self.attend(torch.einsum("bid,bjd->bij", q, k) * self.scale))
    out = torch.einsum("bij,bjd->bid", attn, v)
    return self.to_out(out.reshape(b, self.heads, n, -1).permute(0, 2, 1, 3).reshape(b, n, -1))


def add_parameter_free_modules(net: nn.Module) -> list[str]:
    """Add the reconstruction's "missing" modules to ``net``; the names of the modules added."""
    from audiosr_model.nets.attention import Attention
    from audiosr_model.nets.unet import ResBlock

    added = []
    for name, m in list(net.named_modules()):
        if isinstance(m, ResBlock):
            m.h_upd, m.x_upd = nn.Identity(), nn.Identity()  # never called: the original's up/down is off
            added += [f"{name}.h_upd", f"{name}.x_upd"]
        elif isinstance(m, Attention):
            m.attend, m.attn_drop = nn.Softmax(dim=-1), nn.Dropout(0.0)
            m.forward = types.MethodType(_attention_forward, m)
            added += [f"{name}.attend", f"{name}.attn_drop"]
    net.clap = nn.Module()  # CLAP is never called at inference; its keys are ignored by the loader
    net.clap.audio_branch = nn.Module()
    net.clap.audio_branch.avgpool = nn.AdaptiveAvgPool1d(1)
    added.append("clap.audio_branch.avgpool")
    return added


def build_network(preset: str):
    """The reconstruction's network on the meta device: our skeleton with its deviations 1 and 3."""
    from audiosr_model import config as cfg
    from audiosr_model.weights.load import skeleton

    config = cfg.preset(preset)
    net = skeleton(config)
    with torch.device("meta"):
        net.first_stage_model.vocoder.ups = hand_written_upsamplers(config.vocoder.upsample_initial_channel)
        net.added_modules = add_parameter_free_modules(net)
    return net


# --------------------------------------------------------------------------- the subject


class SeedReconstruction(ReferenceSubject):
    name = "seed-reconstruction"
    description = ("the published hand-made reconstruction: hand-written vocoder upsamplers (output_padding=1), "
                   "quiet-input RMS boost, parameter-free modules added, offline through the environment")

    def activate(self) -> None:
        from audiosr_model.weights.checkpoint import load_into
        from audiosr_model.weights.checkpoint_reader import load_state_dict

        net = build_network(self.preset)
        load_into(net, load_state_dict(self.context.checkpoint, mmap=True), source=self.context.checkpoint)
        self.net = net.to(self.context.device).eval().requires_grad_(False)

    def state_dict_layout(self):
        net = build_network(self.preset)
        return {k: (tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in net.state_dict().items()}

    def enhance(self, waveform, rate, seed, steps, guidance):
        """Deviation 2, then the original's pipeline (its low-pass raises at a 24 kHz cutoff, as the original's)."""
        from audiosr_model.dsp import features, level, lowpass, resample
        from audiosr_model.dsp import waveform as audio
        from audiosr_model.pipeline import Prepared, Randomness, generate
        from audiosr_model.dsp.postprocess import faithful_output_level

        wave = np.asarray(waveform, dtype=np.float32)
        wave = quiet_input_normalisation(wave[None] if wave.ndim == 1 else wave)
        rate = int(rate)
        duration = wave.shape[-1] / rate
        if rate != 48000:
            wave = resample.resample(torch.from_numpy(np.ascontiguousarray(wave)), rate, 48000).numpy()
        norm = level.normalize_input(audio.to_mono(wave, "first"))
        rng = Randomness(int(seed))
        pad = audio.padded_duration(duration)
        frames = int(pad * 100)
        padded = audio.pad_wav(norm[None], int(48000 * pad))
        log_mel, stft = features.wav_feature_extraction(torch.from_numpy(padded), frames)
        cutoff = lowpass.cutoff_hz_from_stft(stft)
        ftype = rng.choose_filter()
        low = np.asarray(lowpass.lowpass(padded[0], cutoff, 48000, order=8, ftype=ftype), np.float32)
        low_mel, _ = features.wav_feature_extraction(torch.from_numpy(low[None]), frames)
        prep = Prepared(norm.shape[-1], pad, frames, padded, log_mel, stft, cutoff, ftype, low, low_mel)
        out = generate(self.net, prep, rng, int(steps), float(guidance)).postprocessed
        n = int(round(duration * 48000))
        return np.asarray(faithful_output_level(out), np.float32)[:n]


def make_subject(context):
    return SeedReconstruction(context)
