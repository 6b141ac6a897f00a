"""In-place arithmetic where it gives the same bits and nothing can notice.

The VAE decoder and the vocoder work on tensors of 50-130 MB each (a 5.12 s
file, ``basic`` preset), and every ``a + b`` or ``x * sigmoid(x)`` allocates
one more: the peak resident set of those stages is a handful of such
temporaries. Writing a result into a temporary that is about to be dropped
changes no bit: IEEE addition and multiplication are commutative, and the
same elementwise kernel runs. It is done only when

- autograd is off (an in-place write would break a backward pass), and
- the destination already has the result's dtype and shape (under autocast a
  bfloat16 destination would otherwise round a float32 sum; broadcasting
  would change the shape).

Callers pass as ``dst`` only a tensor they created and nobody else holds.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["add", "allowed", "may_write"]


def allowed() -> bool:
    """In-place steps at all: only with autograd off (a backward pass needs the overwritten values)."""
    return not torch.is_grad_enabled()


def may_write(dst: Tensor, other: Tensor) -> bool:
    """True when ``dst op= other`` gives exactly ``dst op other``'s tensor."""
    if not allowed():
        return False
    return (dst.dtype == torch.result_type(dst, other)
            and tuple(dst.shape) == tuple(torch.broadcast_shapes(dst.shape, other.shape)))


def add(dst: Tensor, other: Tensor) -> Tensor:
    """``other + dst``, written into ``dst`` when `may_write` allows (``dst`` must be the caller's own temporary)."""
    return dst.add_(other) if may_write(dst, other) else other + dst
