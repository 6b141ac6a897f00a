"""Deterministic random weights for any layout, from a seed.

Used for tests, benchmarks, the bundled default and the oracle: the same
``(key, shape, seed)`` always gives the same tensor, whatever the order in
which keys are generated and whichever process (our venv or the oracle's)
generates them. Each key gets its own generator seeded from a hash of
``seed`` and the key name, so adding or dropping a key changes nothing else.

The generator itself is plain torch, so the same weights come out in any
environment with the same torch build.

Scales keep activations in a sane range through deep random networks:
weights ~ N(0, 1/fan_in), 1-D norm/scale weights ~ 1 + N(0, 0.1^2),
biases ~ N(0, 0.02^2). Integer tensors are zeros.
"""

from __future__ import annotations

import hashlib
import math
from typing import Iterable, Mapping

import torch

from audiosr_model.sampling.schedule import SCHEDULE_BUFFERS

GENERATOR_VERSION = "1"

# Buffers the model computes from its config; random values would make no
# sense there, so random_state_dict leaves them out and callers fill them.
COMPUTED_BUFFERS = frozenset(SCHEDULE_BUFFERS) | {"scale_factor", "logvar"}


def key_seed(seed: int, key: str) -> int:
    digest = hashlib.sha256(f"{GENERATOR_VERSION}:{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def random_tensor(key: str, shape: Iterable[int], seed: int, dtype=torch.float32) -> torch.Tensor:
    shape = tuple(int(s) for s in shape)
    if not dtype.is_floating_point:
        return torch.zeros(shape, dtype=dtype)
    gen = torch.Generator().manual_seed(key_seed(seed, key))
    values = torch.randn(shape, generator=gen, dtype=torch.float32)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "bias":
        values = values * 0.02
    elif len(shape) <= 1:
        # norm scales, embeddings of rank 1: around one, not around zero
        values = 1.0 + 0.1 * values
    else:
        fan_in = math.prod(shape[1:])
        values = values / math.sqrt(max(fan_in, 1))
    return values.to(dtype)


def random_state_dict(
    shapes: Mapping[str, tuple[Iterable[int], torch.dtype] | Iterable[int]],
    seed: int,
    skip_computed: bool = True,
) -> dict[str, torch.Tensor]:
    """Random tensors for ``{key: shape}`` or ``{key: (shape, dtype)}``.

    Keys whose last component is a computed buffer are skipped unless
    ``skip_computed`` is False.
    """
    out: dict[str, torch.Tensor] = {}
    for key, spec in shapes.items():
        if skip_computed and key.rsplit(".", 1)[-1] in COMPUTED_BUFFERS:
            continue
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], torch.dtype):
            shape, dtype = spec
        else:
            shape, dtype = spec, torch.float32
        out[key] = random_tensor(key, shape, seed, dtype)
    return out
