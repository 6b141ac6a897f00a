"""Reduced precision for inference: the networks under ``torch.autocast``, float32 everywhere else.

`reduce_precision(net, dtype, device_type)` wraps the forward of the four
networks (condition encoder, UNet, VAE decoder with post_quant_conv, HiFi-GAN)
in ``torch.autocast``: convolutions, linear layers and matmuls compute in
bfloat16 / float16 from the float32 weights, normalisations and softmax in
float32 (autocast's own op lists); each network hands float32 back at its
boundary, so the DDIM arithmetic, the schedule and every DSP stage stay
float32. The verification harness's ``precision:bf16`` subject and
``enhance --precision`` share this one mechanism.

`check_precision(precision, device)` refuses, with one line, a precision the
device has no fast path for, instead of running it slowly:

* ``bf16`` on CPU needs native bfloat16 instructions (``avx512_bf16`` or
  ``amx_bf16`` in the CPU flags; without them oneDNN emulates bfloat16 and
  is slower than float32); on CUDA, ``torch.cuda.is_bf16_supported()``;
* ``fp16`` on CPU needs ``amx_fp16`` or ``avx512_fp16`` and oneDNN's float16
  support; on CUDA it always runs;
* MPS and other devices: float32 only (nothing measured there).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from audiosr_model.errors import AudioSRError
from audiosr_model.runtime.host import cpu_flags  # noqa: F401  (re-exported: where precision is decided)

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


# ------------------------------------------------------------------ detection


def native_support(precision: str, device: str | torch.device) -> str | None:
    """None when ``device`` has a fast path for ``precision``; otherwise why not (one phrase)."""
    if precision not in PRECISIONS:
        return f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})"
    if precision == "fp32":
        return None
    kind = torch.device(device).type
    if kind == "cpu":
        flags = cpu_flags()
        if precision == "bf16":
            if flags & {"avx512_bf16", "amx_bf16"}:
                return None
            return "this CPU has no native bfloat16 (no avx512_bf16 or amx_bf16 flag)"
        if flags & {"amx_fp16", "avx512_fp16"} and torch.ops.mkldnn._is_mkldnn_fp16_supported():
            return None
        return "this CPU has no native float16 kernels (no amx_fp16 or avx512_fp16 flag); use --precision bf16 " \
               "where the CPU has avx512_bf16, or a CUDA device"
    if kind == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            return "this CUDA device has no bfloat16 support; use --precision fp16"
        return None
    return f"reduced precision is not supported on {kind} (use fp32)"


def check_precision(precision: str, device: str | torch.device) -> None:
    """Raise a one-line `AudioSRError` when ``device`` has no fast path for ``precision``."""
    why = native_support(precision, device)
    if why is not None:
        raise AudioSRError(f"--precision {precision} on {torch.device(device).type}: {why}")


# ------------------------------------------------------------------ autocast


def _to_float32(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    if isinstance(value, tuple):
        return tuple(_to_float32(v) for v in value)
    return value


def autocast_module(module: torch.nn.Module, dtype: torch.dtype, device_type: str) -> None:
    """Run ``module``'s forward under autocast(``dtype``) and hand float32 back to its caller."""
    inner: Callable = module.forward

    @functools.wraps(inner)
    def forward(*args, **kwargs):
        with torch.autocast(device_type, dtype=dtype):
            return _to_float32(inner(*args, **kwargs))

    module.forward = forward


LOW_PRECISION_MODULES = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d,
                         torch.nn.Linear)


def cast_weights_once(module: torch.nn.Module, dtype: torch.dtype) -> int:
    """Store the weights and biases of ``module``'s convolutions and linear layers in ``dtype``; how many.

    Under autocast these layers compute in ``dtype`` from float32 weights, and autocast keeps no cast of a
    weight that does not require grad: every call casts every weight again (a quarter of a bf16 UNet call on
    the ``basic`` preset went to ``aten::copy_``). A weight already in ``dtype`` is used as is, and the cast
    is the same rounding whenever it happens, so the outputs are bit for bit those of casting per call
    (`benchmarks/bench_precision_weights.py` checks it and measures the gain). Only modules autocast runs in
    low precision are touched: normalisations keep their float32 weights."""
    from audiosr_model.runtime import resident

    layers = [m for m in module.modules() if isinstance(m, LOW_PRECISION_MODULES)]
    with torch.no_grad():
        cast = [(m.weight.data.to(dtype), None if m.bias is None else m.bias.data.to(dtype)) for m in layers]
    # Reading the float32 weights made their memory-mapped pages resident; nothing reads them again (the
    # stage's own hand-back, `memory.network_stage`, will only see the new tensors): hand them back now.
    resident.drop(module)
    for m, (weight, bias) in zip(layers, cast):
        m.weight.data = weight
        if bias is not None:
            m.bias.data = bias
    return len(layers)


# The networks whose weights are cast once: the UNet runs 50 times or more per chunk (the DDIM loop), the
# others once per chunk, where casting per call costs the same and the float32 weights stay memory-mapped
# and handed back after their stage (model/runtime/resident.py) instead of held as anonymous copies.
CAST_ONCE = ("model.diffusion_model",)


def reduce_precision(net, dtype: torch.dtype, device_type: str = "cpu") -> list[str]:
    """Put the networks of ``net`` (a `LatentDiffusion`) under autocast; the modules changed.

    The UNet's convolution and linear weights are stored in ``dtype`` once (`cast_weights_once`)."""
    cond, first = net.condition_vae, net.first_stage_model
    targets = {
        "cond_stage_models.0.vae.encoder": cond.encoder, "cond_stage_models.0.vae.quant_conv": cond.quant_conv,
        "model.diffusion_model": net.unet,
        "first_stage_model.post_quant_conv": first.post_quant_conv, "first_stage_model.decoder": first.decoder,
        "first_stage_model.vocoder": first.vocoder,
    }
    for name, module in targets.items():
        autocast_module(module, dtype, device_type)
        if name in CAST_ONCE:
            cast_weights_once(module, dtype)
    return list(targets)


def apply_precision(net, precision: str) -> list[str]:
    """``enhance --precision``: check the device's support, then reduce ``net`` in place (fp32: nothing)."""
    device = net.scale_factor.device
    check_precision(precision, device)
    if precision == "fp32":
        return []
    return reduce_precision(net, DTYPES[precision], device.type)


__all__ = ["CAST_ONCE", "DTYPES", "PRECISIONS", "apply_precision", "autocast_module", "cast_weights_once",
           "check_precision", "cpu_flags", "native_support", "reduce_precision"]
