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

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch

from audiosr_verify.util.paths import data_dir


def oracle_dir(preset: str = "tiny", golden: str | Path | None = None) -> Path:
    return (Path(golden) if golden is not None else data_dir()) / "oracle" / preset


def load_metadata(preset: str = "tiny", golden: str | Path | None = None) -> dict:
    from audiosr_verify.util.safe_open import read_json

    return read_json(oracle_dir(preset, golden) / "metadata.json", "fixture metadata")


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A fixture's tensors through the one opener: a regular file of bounded size (fixtures are a few MB)."""
    from audiosr_verify.oracle.fixture_validation import read_fixture_tensors

    return read_fixture_tensors(path)


def load_input(name: str, preset: str = "tiny", golden: str | Path | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, per-input metadata) of one fixture input."""
    meta = load_metadata(preset, golden)["inputs"][name]
    tensors = _load_tensors(oracle_dir(preset, golden) / f"{name}.safetensors")
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


# --------------------------------------------------------------------------- fixture sets


@dataclass
class FixtureInput:
    """The original's stored tensors and metadata for one input, and its audio file."""

    name: str
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    audio_path: Path

    def has(self, stage: str) -> bool:
        return stage in self.tensors

    def ref(self, stage: str) -> torch.Tensor:
        return expand(self.tensors[stage], self.meta["tensors"][stage])

    def info(self, stage: str) -> dict[str, Any]:
        return self.meta["tensors"][stage]

    def complete(self, stage: str) -> bool:
        """Stored whole (constant runs rebuilt), not as a prefix of the original's tensor."""
        if not self.has(stage):
            return False
        trim = self.info(stage).get("trim")
        return not trim or bool(trim.get("constant_runs")) or trim.get("kept") == trim.get("full_length")

    @property
    def level(self) -> str:
        return self.meta.get("level", "dsp")

    @property
    def chain(self) -> dict[str, Any]:
        return self.meta.get("chain") or {}


def load_fixture_set(fixture_dir: str | Path, inputs_dir: str | Path,
                     names: Iterable[str] | None = None) -> tuple[dict[str, Any], list[FixtureInput]]:
    """(metadata.json, inputs in metadata order) of a fixture directory, validated on opening.

    Every problem is one `AudioSRError` naming the file: see `fixture_validation`.
    """
    from audiosr_verify.oracle.fixture_validation import (check_audio_file, check_input_tensors, open_metadata,
                                                          resolve_names)

    fdir, idir = Path(fixture_dir), Path(inputs_dir)
    meta = open_metadata(fdir)
    if meta.get("inputs_dir"):  # a set exported from the user's audio carries that audio (user_fixtures.py)
        idir = fdir / meta["inputs_dir"]
    wanted = resolve_names(meta, fdir, names)
    out = []
    for name in wanted:
        m = meta["inputs"][name]
        tensors = check_input_tensors(fdir, name, m, meta.get("files"))
        out.append(FixtureInput(name, tensors, m, check_audio_file(idir, m, name, fdir)))
    return meta, out


@dataclass
class Draws:
    """The original's random draws after the filter choice: #1..#5 (torch.randn); #1 is not stored."""

    tensors: list[torch.Tensor | None]
    source: str


def find_draws(inputs: list[FixtureInput], seed: int | None = None) -> Draws | None:
    """The stored draws of a `full` input (condition noise, x_T, per-step noise).

    A set that keeps a subset of a long DDIM trajectory (oracle/user_fixtures.py) stores the condition
    noise and x_T but not every step's noise: the draws are then regenerated from the seed in the original's
    order (`audiosr_model.pipeline.Randomness`: the filter choice, then torch.randn per draw) and used only
    when every one has the sha256 the original recorded for it.
    """
    for inp in inputs:
        if inp.has("ddim.x_T") and inp.has("noise.cond_posterior"):
            steps = sorted(int(m.group(1)) for k in inp.tensors if (m := re.fullmatch(r"noise\.ddim_step(\d+)", k)))
            recorded = inp.chain.get("random_draws") or []
            if recorded and len(steps) + 3 != len(recorded) and seed is not None:
                return _regenerated_draws(inp, recorded, seed)
            draws = [None, inp.ref("noise.cond_posterior"), inp.ref("ddim.x_T")] + [
                inp.ref(f"noise.ddim_step{i}") for i in steps]
            return Draws(draws, inp.name)
    return None


def _regenerated_draws(inp: FixtureInput, recorded: list[dict[str, Any]], seed: int) -> Draws | None:
    from audiosr_model.pipeline import Randomness
    from audiosr_verify.util.hashing import sha256_array

    rng = Randomness(int(seed))
    rng.choose_filter()  # the original draws the filter type first (numpy), then its torch draws
    draws: list[torch.Tensor | None] = []
    for i, rec in enumerate(recorded):
        d = rng.randn(tuple(rec["shape"]))
        if sha256_array(d) != rec["sha256"]:
            return None  # not the original's draw: the DDIM stages are skipped, with a note
        draws.append(None if i == 0 else d)
    for stored in ("noise.cond_posterior", "ddim.x_T"):
        j = 1 if stored == "noise.cond_posterior" else 2
        if not torch.equal(draws[j], inp.ref(stored)):
            return None
    return Draws(draws, f"{inp.name} (step noise regenerated from seed {seed}; every sha256 equals the original's)")
