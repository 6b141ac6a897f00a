"""The subject protocol: how ANY AudioSR implementation is put under test.

A *subject* is an object with some of the stage functions of the schema
(`audiosr_verify.schema.STAGES`), arrays in and arrays out: the harness passes
numpy arrays (float32; int64 timesteps) and Python scalars, and accepts numpy
arrays or torch tensors back. A stage it does not provide is
reported as ``not_provided``, never as passed. The shape of this follows
Polygraphy's runners: ``activate()`` before the first call (load weights,
start a session), ``deactivate()`` after the last; everything in between is
plain function calls the harness compares under one policy.

Stage functions (schema version 1; ``T`` mel frames, latents ``[1, 16, T/8, 32]``)::

    resample(waveform[C, N], rate) -> waveform[C, M] at 48 kHz (all channels at once)
    normalize(waveform[N]) -> waveform[N]
    features(waveform[480*T]) -> (log_mel[T, 256], stft[T, 1024])
    cutoff(stft[T, 1024]) -> int (STFT bin)
    lowpass(waveform[N], cutoff_hz, filter_type) -> waveform[N]
    randomness(seed, latent_shape, count) -> (filter_type, [count draws of latent_shape])
    condition_encode(log_mel[T, 256]) -> (mean, std)
    unet(x, t[B], cond) -> v            (cond UNSCALED: the subject applies scale_factor)
    ddim_schedule(steps) -> {"timesteps", "alphas", "alphas_prev", "sigmas"}
    ddim_step(x, cond, index, steps, guidance, noise) -> {"x_prev", "pred_x0"[, "model_cond", "model_uncond"]}
    vae_decode(z) -> mel[1, 1, T, 256]
    mel_replace(mel, lowpass_mel) -> mel
    vocoder(mel[1, 1, T, 256]) -> waveform[480*T + 16]
    postprocess(waveform[M], lowpass_waveform[N]) -> waveform[M] (or {"waveform", "cutoff_index", "energy_ratio"})
    output_level(waveform[M]) -> waveform[M]
    enhance(waveform[N] or [C, N], rate, seed, steps, guidance) -> waveform at 48 kHz

Optional, for the structural checks:

    state_dict_layout() -> {key: (shape, dtype)}   its checkpoint layout, checked against the original's
    module_root() -> torch.nn.Module               named like the original (``first_stage_model.vocoder.ups.1``),
                                                   for first divergence inside a failing stage

Write one by subclassing `Subject` and overriding what you implement, or hand
any object with such methods to `as_subject`. A factory ``make_subject(context)``
(or ``make_subject()``) returns one; ``context.checkpoint`` is the checkpoint,
in the original's key layout, that the stage fixtures were made with.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

from audiosr_verify.schema import STAGE_NAMES, stage

OPTIONAL_METHODS = ("state_dict_layout", "module_root")


class NotProvided(NotImplementedError):
    """Raised by the `Subject` base class for a stage the subject does not implement."""


@dataclass(frozen=True)
class SubjectContext:
    """What a subject factory is given: the weights the fixtures were made with, and where to run.

    Attributes:
        checkpoint: a safetensors file in the original's key layout holding the weights the stage fixtures
            were made with: the shared seeded weights for the bundled sets, the cached copy of YOUR
            checkpoint for a set made by ``oracle export --checkpoint`` (recognised by its sha256).
        preset: the fixture set's size: ``tiny``, ``basic``, or the path of the set's own ``config.yaml``
            (``audiosr_model.config.preset()`` reads any of them).
        device: where to run (``check --device``), e.g. ``cpu`` or ``cuda``.
        options: ``check --option KEY=VALUE`` pairs (and ``SUBJECT?key=value,...``), for the subject's
            own settings.
    """

    checkpoint: str
    preset: str = "tiny"
    device: str = "cpu"
    options: Mapping[str, str] = field(default_factory=dict)


class Subject:
    """Base class of subjects: override the stages you implement (see the module docstring)."""

    name: str = "subject"
    """Short name shown in every verdict and report (e.g. ``reference``, ``fault:vocoder_padding``)."""
    description: str = ""
    """One line saying what the subject is (shown under the verdict)."""

    # lifecycle (Polygraphy's activate/deactivate)
    def activate(self) -> None:
        """Load weights, start sessions; called once before the first stage call."""

    def deactivate(self) -> None:
        """Release what activate() took; called once after the last stage call."""

    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def provided(self) -> frozenset[str]:
        """The schema stages this subject implements (default: the methods it overrides)."""
        return frozenset(n for n in STAGE_NAMES if _overrides(self, n))

    # optional structure
    def state_dict_layout(self) -> Mapping[str, tuple[tuple[int, ...], str]] | None:
        """Its checkpoint layout, ``{key: (shape, dtype)}``, checked key by key against the original's
        manifest (missing, unexpected, shape or dtype); None (the default) skips that check."""
        return None

    def module_root(self):
        """A ``torch.nn.Module`` whose submodules are named like the original's
        (``first_stage_model.vocoder.ups.1``): with it, a failing stage is rerun with hooks on every module
        and the first module that departs is named. None (the default): the stage is the finest answer."""
        return None


def _not_provided(name: str):
    def method(self, *args, **kwargs):
        raise NotProvided(f"{self.name} does not provide the {name} stage")

    method.__name__ = name
    method.__doc__ = stage(name).signature() + "\n\n" + stage(name).doc
    method.__not_provided__ = True
    return method


for _name in STAGE_NAMES:
    setattr(Subject, _name, _not_provided(_name))


def _overrides(obj: Any, name: str) -> bool:
    fn = getattr(obj, name, None)
    return callable(fn) and not getattr(fn, "__not_provided__", False)


class _Adapter(Subject):
    """Wraps any object that has some stage methods (duck typing) into a `Subject`."""

    def __init__(self, target: Any):
        self._target = target
        self.name = str(getattr(target, "name", type(target).__name__))
        self.description = str(getattr(target, "description", "") or "")
        declared = getattr(target, "provided", None)
        if callable(declared):
            self._provided = frozenset(declared())
        elif declared is not None:
            self._provided = frozenset(declared)
        else:
            self._provided = frozenset(n for n in STAGE_NAMES if _overrides(target, n))
        unknown = self._provided - set(STAGE_NAMES)
        if unknown:
            raise ValueError(f"subject {self.name} declares unknown stages {sorted(unknown)}; "
                             f"the schema has {', '.join(STAGE_NAMES)}")
        for n in self._provided:
            setattr(self, n, getattr(target, n))

    def provided(self) -> frozenset[str]:
        return self._provided

    def activate(self) -> None:
        fn = getattr(self._target, "activate", None)
        if callable(fn):
            fn()

    def deactivate(self) -> None:
        fn = getattr(self._target, "deactivate", None)
        if callable(fn):
            fn()

    def state_dict_layout(self):
        fn = getattr(self._target, "state_dict_layout", None)
        return fn() if callable(fn) else None

    def module_root(self):
        fn = getattr(self._target, "module_root", None)
        return fn() if callable(fn) else None


def as_subject(obj: Any) -> Subject:
    """``obj`` itself when it is a `Subject`, else an adapter exposing the stage methods it has."""
    return obj if isinstance(obj, Subject) else _Adapter(obj)


def call_factory(factory: Any, context: SubjectContext) -> Subject:
    """Call ``factory(context)`` or ``factory()``, whichever it accepts, and adapt the result."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_arg = any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                    for p in params.values())
    return as_subject(factory(context) if takes_arg else factory())


__all__ = ["NotProvided", "OPTIONAL_METHODS", "Subject", "SubjectContext", "as_subject", "call_factory"]
