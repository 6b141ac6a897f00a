"""The built-in subjects ``precision:bf16`` and ``precision:fp16``: our model with its networks in reduced precision.

The four networks (condition encoder, UNet, VAE decoder, HiFi-GAN) run under
``torch.autocast`` with the given dtype: convolutions, linear layers and
matmuls compute in bfloat16 / float16 from the float32 weights, normalisations
and softmax in float32 (autocast's own op lists); each network's output is
cast back to float32 at its boundary, so the DDIM arithmetic, the schedule
and every DSP stage stay float32, as a mixed-precision deployment runs them.

Bitwise parity is impossible in reduced precision, so ``check`` (whose
tolerances sit at float32 rounding) fails such a subject by design; its
verdict is in metric terms instead: `audiosr_verify.checks.precision`
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
from audiosr_model.precision import DTYPES as _ALL_DTYPES
from audiosr_model.precision import autocast_module, reduce_precision  # the one mechanism, shared with enhance
from audiosr_verify.subject import SubjectContext
from audiosr_verify.subjects.reference import ReferenceSubject

DTYPES = dict(_ALL_DTYPES)


class PrecisionSubject(ReferenceSubject):
    """The reference with its networks in ``precision`` (``bf16`` or ``fp16``)."""

    def __init__(self, precision: str, context: SubjectContext | None = None, net=None, preset: str = "tiny"):
        if precision not in DTYPES:
            raise AudioSRError(f"precision {precision!r}: known precisions are {', '.join(DTYPES)}")
        super().__init__(context, net, preset)
        self.precision, self.dtype = precision, DTYPES[precision]
        self.name = f"precision:{precision}"
        self.description = (f"audiosr_model with its networks under torch.autocast({precision}); "
                            "DSP and DDIM arithmetic in float32")

    def activate(self) -> None:
        if self.net is None:
            from audiosr_model.load import load_model

            self.net, _ = load_model(self.context.checkpoint, self.preset, self.context.device)
        else:  # never change a network the caller shares
            import copy

            self.net = copy.deepcopy(self.net)
        reduce_precision(self.net, self.dtype, self.net.scale_factor.device.type)


def factory(name: str) -> Callable[[SubjectContext], PrecisionSubject]:
    if name not in DTYPES:
        raise AudioSRError(f"precision {name!r}: known precisions are {', '.join(DTYPES)}")

    def make(context: SubjectContext) -> PrecisionSubject:
        return PrecisionSubject(name, context)

    return make


__all__ = ["DTYPES", "PrecisionSubject", "autocast_module", "factory", "reduce_precision"]
