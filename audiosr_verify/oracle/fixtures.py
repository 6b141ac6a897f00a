"""Read the oracle fixtures in ``golden/oracle/<preset>/`` (project venv).

Each ``<input>.safetensors`` holds the original's intermediates for one
fixture input; ``metadata.json`` says, per tensor, which original function
produced it and how it was trimmed (schema: ``golden/oracle/README.md``).

A stored tensor may be shorter than the original's along one axis:

- ``trim.kept < trim.full_length`` and no ``constant_runs``: only the first
  ``kept`` slices were stored; compare that prefix of ours.
- ``constant_runs``: the dropped slices were exact constants
  (``[start, stop) == value``), so the full tensor can be rebuilt.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from audiosr_verify.util.paths import data_dir


def oracle_dir(preset: str = "tiny", golden: str | Path | None = None) -> Path:
    return (Path(golden) if golden is not None else data_dir()) / "oracle" / preset


def load_metadata(preset: str = "tiny", golden: str | Path | None = None) -> dict:
    return json.loads((oracle_dir(preset, golden) / "metadata.json").read_text())


def load_input(name: str, preset: str = "tiny", golden: str | Path | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, per-input metadata) of one fixture input."""
    from safetensors.torch import load_file

    meta = load_metadata(preset, golden)["inputs"][name]
    tensors = load_file(str(oracle_dir(preset, golden) / f"{name}.safetensors"))
    return tensors, meta


def expand(tensor: torch.Tensor, info: dict) -> torch.Tensor:
    """Rebuild the dropped constant runs; a plain prefix trim stays a prefix."""
    trim = info.get("trim")
    if not trim or not trim.get("constant_runs"):
        return tensor
    axis = trim["axis"] % tensor.dim()
    parts = [tensor]
    for run in trim["constant_runs"]:
        shape = list(tensor.shape)
        shape[axis] = run["stop"] - run["start"]
        parts.append(torch.full(shape, run["value"], dtype=tensor.dtype))
    return torch.cat(parts, dim=axis)


def comparable(ours: torch.Tensor, info: dict) -> torch.Tensor:
    """The part of our full-length tensor that matches what the oracle stored."""
    trim = info.get("trim")
    if not trim:
        return ours
    axis = trim["axis"] % ours.dim()
    if ours.shape[axis] != trim["full_length"]:
        raise ValueError(
            f"length {ours.shape[axis]} along axis {axis}, the original's is {trim['full_length']}"
        )
    if trim.get("constant_runs"):
        return ours
    return ours.narrow(axis, 0, trim["kept"])


def reference(tensors: dict[str, torch.Tensor], meta: dict, name: str) -> torch.Tensor:
    """The oracle's tensor ``name``, constant runs rebuilt (compare with comparable(ours))."""
    return expand(tensors[name], meta["tensors"][name])
