"""The chained view of stage parity: the subject's own stages one after the other from the audio file.

Each stage is fed the previous one's output, so errors accumulate: how much does a difference matter
further down? One loop (`chained_view`) walks `CHAINED_STEPS`, the schema's chain
(`schema.CHAIN_STAGES`, with the features stage twice: of the padded waveform and of its low-passed
copy). A step's ``run`` calls the subject's stage and compares its output; where the subject does not
provide the stage, its ``bridge`` hands on the original's stored tensor when that is whole, otherwise
the chain stops there (noted). Steps from the condition on (``needs="draws"``) run only on inputs that
store the condition chain, with the original's random draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from audiosr_verify.checks.stage_run import (
    FILTER_TYPES, Settings, StageRun, as_tensor, channel0, cond_reference, cutoff_hz, draws_for, pad_to_original,
    read_audio,
)
from audiosr_verify.oracle.fixtures import Draws


class Chain:
    """One input's run down the chain: what each step hands the next."""

    def __init__(self, run: StageRun, settings: Settings, shared: Draws | None):
        self.run, self.settings, self.shared = run, settings, shared
        self.inp, self.meta = run.inp, run.inp.meta
        self.wave, self.rate = read_audio(self.inp)
        self.resampled = None  # channel 0 at 48 kHz
        self.padded: np.ndarray | None = None  # normalized and padded to the original's length
        self.stft: torch.Tensor | None = None
        self.bin = 0
        self.low = None  # the low-passed waveform (the seed's filter type)
        self.low_mel: torch.Tensor | None = None
        self.draws: list[torch.Tensor] | None = None
        self._draws_ok: bool | None = None
        self.cond: torch.Tensor | None = None
        self.x: torch.Tensor | None = None
        self.decoded: torch.Tensor | None = None
        self.replaced: torch.Tensor | None = None
        self.voc: torch.Tensor | None = None
        self.post: torch.Tensor | None = None

    def stop(self, why: str) -> bool:
        """The chain ends here (noted); False for the loop."""
        self.run.result.notes.append(f"{self.inp.name} (chained): stops at {why}")
        return False

    def ready(self, needs: str) -> bool:
        """"" (always) or "draws": the input stores the condition chain (else the chain ends silently) and
        the original's random draws are available (else it stops, noted)."""
        if not needs or self._draws_ok:
            return True
        if self.inp.level not in ("chain", "full") or not self.inp.has("cond.posterior_mean"):
            return False
        self.draws = draws_for(self.inp, self.shared)
        if self.draws is None:
            return self.stop("the condition (the original's random draws are not available)")
        self._draws_ok = True
        return True


@dataclass(frozen=True)
class ChainedStep:
    """One stage of the chain: ``run`` when the subject provides it, else ``bridge``; False ends the chain."""

    stage: str
    run: Callable[[Chain], bool]
    bridge: Callable[[Chain], bool]
    needs: str = ""  # "" | "draws" (Chain.ready)


def chained_view(run: StageRun, settings: Settings, shared: Draws | None) -> None:
    """The subject's stages one after the other from the audio file; bridges use whole stored tensors."""
    c = Chain(run, settings, shared)
    for step in CHAINED_STEPS:
        if not c.ready(step.needs):
            return
        if not (step.run(c) if run.can(step.stage) else step.bridge(c)):
            return


def _go(c: Chain) -> bool:
    return True


# --------------------------------------------------------------------------- resample -> normalize


def _resample(c: Chain) -> bool:
    if c.rate == 48000:
        c.resampled = c.wave[0]
        return True
    out = c.run.call("resample", c.wave, c.rate)
    if out is None:
        return False
    c.resampled = channel0(out["waveform"])
    if c.inp.has("resample.waveform"):
        c.run.tensor("resample.waveform", c.resampled)
    return True


def _resample_bridge(c: Chain) -> bool:
    if c.rate == 48000:
        c.resampled = c.wave[0]
    elif c.inp.complete("resample.waveform"):
        c.resampled = c.inp.ref("resample.waveform")
    else:
        return c.stop("resample (not provided; the original's output is stored only as a prefix)")
    return True


def _normalize(c: Chain) -> bool:
    out = c.run.call("normalize", as_tensor(c.resampled).float().numpy())
    if out is None:
        return False
    c.run.tensor("normalize.waveform", out["waveform"])
    c.padded = pad_to_original(out["waveform"], c.inp)
    return True


def _normalize_bridge(c: Chain) -> bool:
    if not c.inp.complete("normalize.waveform"):
        return c.stop("normalize (not provided; stored only as a prefix)")
    c.padded = pad_to_original(c.inp.ref("normalize.waveform"), c.inp)
    return True


# --------------------------------------------------------------------------- features -> cutoff -> low-pass


def _features(c: Chain) -> bool:
    out = c.run.call("features", c.padded)
    if out is None:
        return False
    c.stft = as_tensor(out["stft"]).float()
    c.run.tensor("features.log_mel", out["log_mel"])
    c.run.tensor("features.stft_bin_sum", c.stft.abs().sum(dim=0))
    c.run.tensor("features.stft_frames", c.stft[c.inp.info("features.stft_frames").get("frame_index")])
    return True


def _cutoff(c: Chain) -> bool:
    out = c.run.call("cutoff", c.stft if c.stft is not None else c.inp.ref("features.stft_bin_sum")[None])
    if out is None:
        return False
    c.bin = int(out["bin"])
    c.run.value("features.cutoff_bin", c.bin, c.meta["cutoff_bin"])
    return True


def _cutoff_bridge(c: Chain) -> bool:
    c.bin = int(c.meta["cutoff_bin"])
    return True


def _lowpass(c: Chain) -> bool:
    """The seed's filter type feeds the chain; the other stored types are checked on the same input."""
    run, inp, meta = c.run, c.inp, c.meta
    seed_type = meta["filter_type_for_seed"]
    errors = meta.get("errors", {})
    for ftype in [seed_type] + [f for f in FILTER_TYPES if f != seed_type]:
        name = f"lowpass.{ftype}"
        if ftype != seed_type and not inp.has(name) and name not in errors:
            continue
        args = (c.padded, cutoff_hz(c.bin), ftype)
        if name in errors:
            out = run.behaviour("lowpass", name, args, errors[name], c.padded.size)
        else:
            out = run.call("lowpass", *args)
            if out is not None and inp.has(name):
                run.tensor(name, out["waveform"])
        if out is None:
            if ftype == seed_type:
                return c.stop(f"{name} (no output to go on with)")
            continue
        if ftype == seed_type:
            c.low = out["waveform"]
    return True


def _lowpass_bridge(c: Chain) -> bool:
    return c.stop("lowpass (not provided; stored only as a prefix)")


def _lowpass_features(c: Chain) -> bool:
    """The features of the low-passed copy: the condition's input."""
    if not c.inp.has("lowpass.log_mel"):
        return True
    out = c.run.call("features", as_tensor(c.low).float().numpy())
    if out is None:
        return False
    c.low_mel = as_tensor(out["log_mel"]).float()
    c.run.tensor("lowpass.log_mel", c.low_mel)
    return True


def _lowpass_features_bridge(c: Chain) -> bool:
    if c.inp.has("lowpass.log_mel"):
        c.low_mel = c.inp.ref("lowpass.log_mel")
    return True


# --------------------------------------------------------------------------- condition -> DDIM -> decoder -> ...


def _condition_encode(c: Chain) -> bool:
    out = c.run.call("condition_encode", c.low_mel)
    if out is None:
        return False
    c.run.tensor("cond.posterior_mean", out["mean"])
    c.run.tensor("cond.posterior_std", out["std"])
    c.cond = as_tensor(out["mean"]).float() + as_tensor(out["std"]).float() * c.draws[1]
    ref, how = cond_reference(c.inp, c.draws)
    c.run.tensor("cond.latent", c.cond, note=f"reference {how}", ref=ref)
    return True


def _condition_bridge(c: Chain) -> bool:
    c.cond, _ = cond_reference(c.inp, c.draws)
    return True


def _ddim_step(c: Chain) -> bool:
    inp, steps = c.inp, c.settings.steps
    c.x = c.draws[2]
    for i in range(steps):
        out = c.run.call("ddim_step", c.x, c.cond, steps - 1 - i, steps, c.settings.guidance, c.draws[3 + i])
        if out is None:
            return False
        c.x = as_tensor(out["x_prev"]).float()
        if inp.has(f"ddim.step{i}.pred_x0"):
            c.run.tensor(f"ddim.step{i}.pred_x0", out["pred_x0"])
        if inp.has(f"ddim.step{i}.x_prev"):
            c.run.tensor(f"ddim.step{i}.x_prev", c.x)
    return True


def _ddim_bridge(c: Chain) -> bool:
    last = f"ddim.step{c.settings.steps - 1}.x_prev"
    if not c.inp.has(last):
        return c.stop("ddim_step (not provided)")
    c.x = c.inp.ref(last)
    return True


def _vae_decode(c: Chain) -> bool:
    out = c.run.call("vae_decode", c.x)
    if out is None:
        return False
    c.decoded = as_tensor(out["mel"]).float()
    c.run.tensor("mel.decoded", c.decoded)
    return True


def _vae_bridge(c: Chain) -> bool:
    c.decoded = c.inp.ref("mel.decoded")
    return True


def _mel_replace(c: Chain) -> bool:
    out = c.run.call("mel_replace", c.decoded, c.low_mel[None, None])
    if out is None:
        return False
    c.replaced = as_tensor(out["mel"]).float()
    if c.inp.has("mel.replaced"):
        c.run.tensor("mel.replaced", c.replaced)
    return True


def _mel_replace_bridge(c: Chain) -> bool:
    if not c.inp.has("mel.replaced"):
        return c.stop("mel_replace (not provided)")
    c.replaced = c.inp.ref("mel.replaced")
    return True


def _vocoder(c: Chain) -> bool:
    out = c.run.call("vocoder", c.replaced)
    if out is None:
        return False
    c.voc = as_tensor(out["waveform"]).float().reshape(-1)
    c.run.tensor("vocoder.waveform", c.voc)
    if c.voc.shape[-1] != c.inp.chain.get("vocoder_length", c.voc.shape[-1]):
        return c.stop("post-processing (the vocoder's output length differs from the original's)")
    return True


def _postprocess(c: Chain) -> bool:
    out = c.run.call("postprocess", c.voc, c.low)
    if out is None:
        return False
    c.post = as_tensor(out["waveform"]).float().reshape(-1)
    c.run.tensor("post.waveform", c.post)
    return True


def _output_level(c: Chain) -> bool:
    out = c.run.call("output_level", c.post)
    if out is not None:
        c.run.tensor("final.waveform", out["waveform"])
    return True


def _stops(why: str) -> Callable[[Chain], bool]:
    return lambda c: c.stop(why)


CHAINED_STEPS: tuple[ChainedStep, ...] = (
    ChainedStep("resample", _resample, _resample_bridge),
    ChainedStep("normalize", _normalize, _normalize_bridge),
    ChainedStep("features", _features, _go),
    ChainedStep("cutoff", _cutoff, _cutoff_bridge),
    ChainedStep("lowpass", _lowpass, _lowpass_bridge),
    ChainedStep("features", _lowpass_features, _lowpass_features_bridge),
    ChainedStep("condition_encode", _condition_encode, _condition_bridge, needs="draws"),
    ChainedStep("ddim_step", _ddim_step, _ddim_bridge, needs="draws"),
    ChainedStep("vae_decode", _vae_decode, _vae_bridge, needs="draws"),
    ChainedStep("mel_replace", _mel_replace, _mel_replace_bridge, needs="draws"),
    ChainedStep("vocoder", _vocoder, _stops("vocoder (not provided; stored only as a prefix)"), needs="draws"),
    ChainedStep("postprocess", _postprocess, _stops("postprocess (not provided)"), needs="draws"),
    ChainedStep("output_level", _output_level, _go, needs="draws"),
)

__all__ = ["CHAINED_STEPS", "Chain", "ChainedStep", "chained_view"]
