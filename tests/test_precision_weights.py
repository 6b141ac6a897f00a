"""bf16 with the UNet's weights cast once (model/runtime/precision.py `cast_weights_once`): the same numbers
as autocast casting them on every call, bit for bit; a different cast is seen (the comparison can fail)."""

from __future__ import annotations

import copy

import pytest
import torch

from audiosr_model.runtime.precision import CAST_ONCE, autocast_module, cast_weights_once, reduce_precision


@pytest.fixture(scope="module")
def unet_inputs():
    from audiosr_model.weights.load import random_model

    net = random_model("tiny")
    g = torch.Generator().manual_seed(0)
    shape = (2, net.config.unet.out_channels, 16, 8)
    return net, torch.randn(shape, generator=g), torch.randn(shape, generator=g), torch.full((2,), 500)


def _call(net, x, c, t):
    with torch.no_grad():
        return net.unet_forward(x, t, c)


def test_weights_cast_once_give_autocast_s_numbers_bit_for_bit(unet_inputs):
    net, x, c, t = unet_inputs
    per_call = copy.deepcopy(net)
    autocast_module(per_call.unet, torch.bfloat16, "cpu")
    once = copy.deepcopy(net)
    reduce_precision(once, torch.bfloat16, "cpu")  # what enhance --precision bf16 does
    assert "model.diffusion_model" in CAST_ONCE
    convs = [m for m in once.unet.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
    norms = [m for m in once.unet.modules() if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm))]
    assert norms and all(m.weight.dtype == torch.float32 for m in norms), "normalisations keep float32"
    a, b = _call(per_call, x, c, t), _call(once, x, c, t)
    assert a.dtype == b.dtype == torch.float32
    assert torch.equal(a, b)


def test_a_different_cast_is_not_bit_identical(unet_inputs):
    """The other direction: weights rounded another way (float16) under the same bf16 autocast differ."""
    net, x, c, t = unet_inputs
    per_call = copy.deepcopy(net)
    autocast_module(per_call.unet, torch.bfloat16, "cpu")
    other = copy.deepcopy(net)
    autocast_module(other.unet, torch.bfloat16, "cpu")
    assert cast_weights_once(other.unet, torch.float16) > 0
    assert not torch.equal(_call(per_call, x, c, t), _call(other, x, c, t))
