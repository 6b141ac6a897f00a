"""Building a ready-to-run model: from a checkpoint, or from seeded random weights.

The network is first built on the ``meta`` device (no memory, no random
initialisation) and then receives its tensors with ``assign=True``, so a
6 GB checkpoint is never held twice and nothing is initialised only to be
overwritten.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from audiosr_model.config import ModelConfig, preset
from audiosr_model.errors import AudioSRError
from audiosr_model.nets.latent_diffusion import LatentDiffusion
from audiosr_model.sampling.schedule import schedule_buffers
from audiosr_model.weights import checkpoint, checkpoint_reader
from audiosr_model.weights.random_weights import random_state_dict

RANDOM_SCALE_FACTOR = 0.5  # random checkpoints use 0.5 so a dropped scale_factor shows


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise AudioSRError(f"unknown device {name!r}; use auto, cpu, cuda or mps")
    if name == "cuda" and not torch.cuda.is_available():
        raise AudioSRError("device cuda requested but CUDA is not available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise AudioSRError("device mps requested but MPS is not available")
    return torch.device(name)


def skeleton(config: ModelConfig, with_first_stage_encoder: bool = True) -> LatentDiffusion:
    """The network on the meta device: names, shapes and dtypes, no storage."""
    with torch.device("meta"):
        return LatentDiffusion(config, with_first_stage_encoder)


def random_state(config: ModelConfig, seed: int, with_first_stage_encoder: bool = True) -> dict[str, torch.Tensor]:
    """A complete, deterministic state dict for ``config`` from ``seed``."""
    specs = {k: (tuple(v.shape), v.dtype) for k, v in skeleton(config, with_first_stage_encoder).state_dict().items()}
    state = random_state_dict(specs, seed)
    state.update(schedule_buffers(config.diffusion))
    state["scale_factor"] = torch.tensor(RANDOM_SCALE_FACTOR, dtype=torch.float32)
    return {k: state[k] for k in specs}  # model order


def _finish(net: LatentDiffusion, device: torch.device) -> LatentDiffusion:
    net.share_identical_encoders()
    return net.to(device).eval().requires_grad_(False)


def random_model(config: ModelConfig | str, seed: int = 0, device: str | torch.device = "cpu") -> LatentDiffusion:
    """Seeded random weights; the network is shared between callers (it is never mutated)."""
    config = preset(config) if isinstance(config, str) else config
    return _random_model(config, seed, str(device))


@functools.lru_cache(maxsize=2)
def _random_model(config: ModelConfig, seed: int, device: str) -> LatentDiffusion:
    net = skeleton(config)
    net.load_state_dict(random_state(config, seed), strict=True, assign=True)
    return _finish(net, torch.device(device))


def load_model(
    path: str | Path,
    config: ModelConfig | str = "basic",
    device: str | torch.device = "cpu",
    with_first_stage_encoder: bool = True,
) -> tuple[LatentDiffusion, checkpoint.KeyReport]:
    """Load a checkpoint strictly (every key accounted for) into a fresh network."""
    config = preset(config) if isinstance(config, str) else config
    state = checkpoint_reader.load_state_dict(path, mmap=True)
    net = skeleton(config, with_first_stage_encoder)
    report = checkpoint.load_into(net, state, source=str(path))
    # Buffers and parameters must all be real tensors now.
    leftover = [n for n, t in net.state_dict().items() if t.is_meta]
    if leftover:
        raise AudioSRError(f"checkpoint left tensors unset: {', '.join(leftover[:5])}", path)
    return _finish(net, torch.device(device)), report
