"""The speed options of ``enhance`` (``--precision``, ``--attention``, ``--compile``) applied to a network.

One function, `fast_network`, so that everything that runs a fast path runs
the same one: the golden cases of the fast paths (audiosr_verify/golden), the
``precision:P[+sdpa][+compile]`` subjects and ``enhance`` itself.
"""

from __future__ import annotations

import copy

DEFAULTS = {"precision": "fp32", "attention": "math", "compile": False}


def is_default(precision: str = "fp32", attention: str = "math", compile: bool = False) -> bool:
    return (precision, attention, bool(compile)) == tuple(DEFAULTS.values())


def fast_network(net, precision: str = "fp32", attention: str = "math", compile: bool = False, *,
                 copy_first: bool = True, require_native: bool = True):
    """``net`` with its networks in ``precision`` (autocast), its UNet attention by ``attention`` and,
    with ``compile``, its UNet through ``torch.compile``: what ``enhance --precision --attention
    --compile`` runs.

    The defaults return ``net`` itself. Otherwise a deep copy is changed (``copy_first``; pass False for
    a network nobody else holds): a loaded network is often shared (the bundled random weights are cached),
    and a fast path must never change it for its other users. A precision the device has no fast path
    for is refused in one line (`precision.check_precision`), before anything is changed, unless
    ``require_native`` is False (the precision subjects measure float16 where it is slow, too).
    """
    from audiosr_model.runtime.precision import DTYPES, check_precision, reduce_precision
    from audiosr_model.nets.attention import set_attention

    if is_default(precision, attention, compile):
        return net
    device = net.scale_factor.device
    if require_native:
        check_precision(precision, device)
    net = copy.deepcopy(net) if copy_first else net
    if precision != "fp32":
        reduce_precision(net, DTYPES[precision], device.type)
    set_attention(net.unet, attention)
    if compile:
        from audiosr_model.runtime.compiled import compile_unet

        compile_unet(net)
    return net


__all__ = ["DEFAULTS", "fast_network", "is_default"]
