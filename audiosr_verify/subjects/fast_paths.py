"""The built-in subjects ``precision:bf16``, ``precision:fp16`` (and ``+sdpa`` / ``+compile`` forms such as
``precision:bf16+sdpa`` or ``precision:fp32+compile``): our model as ``enhance --precision P
--attention A [--compile]`` runs it.

The four networks (condition encoder, UNet, VAE decoder, HiFi-GAN) run under
``torch.autocast`` with the given dtype: convolutions, linear layers and
matmuls compute in bfloat16 / float16 from the float32 weights, normalisations
and softmax in float32 (autocast's own op lists); each network's output is
cast back to float32 at its boundary, so the DDIM arithmetic, the schedule
and every DSP stage stay float32, as a mixed-precision deployment runs them.

Bitwise parity is impossible in reduced precision, so ``check`` (whose
tolerances sit at float32 rounding) fails such a subject by design; its
verdict is in metric terms instead: `audiosr_verify.checks.metric_verdict`
(stage errors relative to the original's, LSD below and above the cutoff,
SI-SDR and level of the end-to-end output), with tolerances per precision
measured by ``python benchmarks/bench_precision.py``.

float16 runs wherever torch runs it; on a CPU without native float16
kernels it is very slow (minutes per network call), so its measurements
are taken on CUDA.
"""

from __future__ import annotations

from typing import Callable

from audiosr_model.errors import AudioSRError
from audiosr_model.runtime.precision import DTYPES as _ALL_DTYPES
from audiosr_model.runtime.precision import (  # the one mechanism, shared with enhance
    autocast_module,
    reduce_precision,
)
from audiosr_verify.subject import SubjectContext
from audiosr_verify.subjects.reference import ReferenceSubject

DTYPES = dict(_ALL_DTYPES)


ATTENTIONS = ("math", "sdpa")


def _check_known(precision: str) -> None:
    if precision not in DTYPES and precision != "fp32":
        raise AudioSRError(f"precision {precision!r}: known precisions are fp32, {', '.join(DTYPES)} "
                           "(optionally +sdpa, +compile)")


def parse(name: str) -> tuple[str, str, bool]:
    """``bf16``, ``bf16+sdpa``, ``fp32+compile`` ... -> (precision, attention, compile): what ``enhance
    --precision P [--attention sdpa] [--compile]`` runs."""
    parts = name.split("+")
    precision, extra = parts[0], parts[1:]
    _check_known(precision)
    attentions = [e for e in extra if e in ATTENTIONS]
    if len(attentions) > 1 or len(set(extra)) != len(extra) or any(
            e not in ATTENTIONS and e != "compile" for e in extra):
        raise AudioSRError(f"precision subject {name!r}: after the precision only +sdpa or +math, and +compile, "
                           "may follow")
    return precision, (attentions[0] if attentions else "math"), "compile" in extra


class PrecisionSubject(ReferenceSubject):
    """The reference with its networks in ``precision`` (``bf16``, ``fp16``, or ``fp32``) and its UNet
    attention computed by ``attention`` (``math``: the original's ops; ``sdpa``: torch's fused kernel)."""

    def __init__(self, precision: str, context: SubjectContext | None = None, net=None, preset: str = "tiny",
                 attention: str = "math", compile: bool = False):
        _check_known(precision)
        if attention not in ATTENTIONS:
            raise AudioSRError(f"attention {attention!r}: known are {', '.join(ATTENTIONS)}")
        super().__init__(context, net, preset)
        self.precision, self.attention, self.compile = precision, attention, compile
        self.dtype = DTYPES.get(precision)
        self.name = (f"precision:{precision}" + ("" if attention == "math" else f"+{attention}")
                     + ("+compile" if compile else ""))
        self.description = (f"audiosr_model with its networks under torch.autocast({precision})"
                            if self.dtype is not None else "audiosr_model in float32")
        self.description += ("; DSP and DDIM arithmetic in float32"
                             + ("; UNet attention by scaled_dot_product_attention" if attention == "sdpa" else "")
                             + ("; UNet through torch.compile" if compile else ""))

    def activate(self) -> None:
        from audiosr_model.runtime.speed import fast_network

        shared = self.net is not None  # never change a network the caller shares: fast_network copies it
        if not shared:
            from audiosr_model.weights.load import load_model

            self.net, _ = load_model(self.context.checkpoint, self.preset, self.context.device)
        # what enhance --precision --attention --compile runs; float16 is measured where it is slow, too
        self.net = fast_network(self.net, self.precision, self.attention, self.compile, copy_first=shared,
                                require_native=False)


def factory(name: str) -> Callable[[SubjectContext], PrecisionSubject]:
    precision, attention, compile = parse(name)

    def make(context: SubjectContext) -> PrecisionSubject:
        return PrecisionSubject(precision, context, attention=attention, compile=compile)

    return make


__all__ = ["ATTENTIONS", "DTYPES", "PrecisionSubject", "autocast_module", "factory", "parse", "reduce_precision"]
