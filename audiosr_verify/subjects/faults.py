"""Porting faults as subjects: the reference with ONE realistic mistake each (``fault:NAME``).

Each fault says which stage of the schema should catch it first (the earliest
stage that can see it) and, where the stage has modules, which module first
departs. tests/test_fault_subjects.py asserts both through the protocol, the
way a port's own CI would see them.

A fault changes the subject's network once (``net``: an attribute of a layer,
a constant) or swaps a function of `audiosr_model` while the subject's stage
calls run (``patch``: module, attribute, replacement), so every stage that
uses the changed piece, `enhance` included, sees it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from audiosr_model.errors import AudioSRError
from audiosr_verify.schema import STAGE_NAMES
from audiosr_verify.subject import SubjectContext
from audiosr_verify.subjects.reference import ReferenceSubject


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    stage: str  # the schema stage expected to catch it first
    module: str | None = None  # the module expected to diverge first (stages with modules)
    net: Callable[[Any], None] | None = None
    patches: tuple[tuple[str, str, Callable[[Any], Any]], ...] = field(default_factory=tuple)  # (module, attr, f(old))


def _set_groupnorm_eps(prefix: str, eps: float) -> Callable[[Any], None]:
    def apply(net) -> None:
        n = 0
        for name, m in net.named_modules():
            if name.startswith(prefix) and isinstance(m, torch.nn.GroupNorm):
                m.eps, n = eps, n + 1
        assert n, f"no GroupNorm under {prefix}"

    return apply


def _vocoder_output_padding(net) -> None:
    ups1 = net.first_stage_model.vocoder.ups[1]  # the rate-5 layer, where (k - u) is odd
    ups1.output_padding = (1,)


def _unconditional_constant(net) -> None:
    net.unconditional_latent = lambda like: torch.full_like(like, -11.0)


def _timesteps_minus_one(old):
    return lambda n, total=1000: old(n, total) - 1


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("vocoder_output_padding", "HiFi-GAN rate-5 upsampler with output_padding=1 (a hand-written layer list)",
          "vocoder", "first_stage_model.vocoder.ups.1", net=_vocoder_output_padding),
    Fault("skipped_normalization", "input not normalised to peak 0.5 before analysis", "normalize",
          patches=(("audiosr_model.level", "normalize_input", lambda old: (lambda x: x)),)),
    Fault("vae_groupnorm_eps", "condition VAE GroupNorm eps 1e-5 (torch's default) instead of 1e-6",
          "condition_encode", "cond_stage_models.0.vae.encoder.down.0.block.0.norm1",
          net=_set_groupnorm_eps("cond_stage_models.0.vae", 1e-5)),
    Fault("unet_groupnorm_eps", "UNet GroupNorm eps 1e-6 (copied from the VAE) instead of 1e-5", "unet",
          "model.diffusion_model.input_blocks.1.0.in_layers.0", net=_set_groupnorm_eps("model.diffusion_model", 1e-6)),
    Fault("unconditional_constant", "unconditional condition -11.0 instead of -11.4981", "ddim_step",
          "model.diffusion_model.input_blocks.0.0", net=_unconditional_constant),
    Fault("ddim_timesteps_offset", "DDIM timesteps shifted by -1 (0-based instead of the original's +1)",
          "ddim_schedule", patches=(("audiosr_model.diffusion", "ddim_timesteps", _timesteps_minus_one),)),
)}


class FaultSubject(ReferenceSubject):
    """The reference with one `Fault` applied."""

    def __init__(self, fault: Fault, context: SubjectContext | None = None, net=None, preset: str = "tiny"):
        super().__init__(context, net, preset)
        self.fault = fault
        self.name = f"fault:{fault.name}"
        self.description = fault.description
        for stage in STAGE_NAMES:
            setattr(self, stage, self._patched(getattr(self, stage)))

    def activate(self) -> None:
        super().activate()
        if self.fault.net is not None:
            self.fault.net(self.net)

    @contextlib.contextmanager
    def _patches(self):
        import importlib

        saved = []
        try:
            for module, attr, make in self.fault.patches:
                mod = importlib.import_module(module)
                old = getattr(mod, attr)
                saved.append((mod, attr, old))
                setattr(mod, attr, make(old))
            yield
        finally:
            for mod, attr, old in reversed(saved):
                setattr(mod, attr, old)

    def _patched(self, method):
        def call(*args, **kwargs):
            with self._patches():
                return method(*args, **kwargs)

        call.__name__ = method.__name__
        return call

    def provided(self) -> frozenset[str]:
        return frozenset(STAGE_NAMES)


def factory(name: str) -> Callable[[SubjectContext], FaultSubject]:
    if name == "list" or name not in FAULTS:
        known = ", ".join(sorted(FAULTS))
        raise AudioSRError(f"fault {name!r}: known faults are {known}" if name != "list" else f"faults: {known}")

    def make(context: SubjectContext) -> FaultSubject:
        return FaultSubject(FAULTS[name], context)

    return make


__all__ = ["FAULTS", "Fault", "FaultSubject", "factory"]
