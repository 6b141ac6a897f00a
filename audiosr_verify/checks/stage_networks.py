"""Our own network for stage parity: the tiny preset with the oracle's shared random weights, built once.

The fixtures of ``golden/oracle/tiny`` were exported from the original loaded with these weights
(`oracle.export.shared_tiny_weights`), so our network with them is the reference subject that
`checks.stages.run_fixture_suite` checks.
"""

from __future__ import annotations

import torch


def shared_network(preset: str = "tiny", weights: dict[str, torch.Tensor] | None = None):
    """A fresh network of ``preset`` loaded with the oracle's shared random weights.

    The weights are `export.shared_tiny_weights()` (or the given dict) plus
    our schedule buffers (the original computes its own; the fixtures compare
    them implicitly through the DDIM stages).
    """
    from audiosr_model import config as cfg
    from audiosr_model.weights.checkpoint import load_into
    from audiosr_model.sampling.schedule import schedule_buffers
    from audiosr_model.weights.load import skeleton
    from audiosr_verify.oracle import export

    config = cfg.preset(preset)
    state = dict(weights if weights is not None else export.shared_tiny_weights())
    state.update(schedule_buffers(config.diffusion))
    net = skeleton(config)
    load_into(net, state, source=f"shared {preset} weights")
    return net.eval().requires_grad_(False)


_TINY: list = []


def tiny_network():
    """Our tiny network with the oracle's shared weights (built once; never mutated by the suite)."""
    if not _TINY:
        _TINY.append(shared_network("tiny"))
    return _TINY[0]


__all__ = ["shared_network", "tiny_network"]
