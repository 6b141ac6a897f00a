"""A user's checkpoint as the safetensors copy that the oracle runner and subjects load, made once per hash.

The oracle runner (inside the original's venv) and every subject read
safetensors only: nothing in the harness executes pickle code. A user's
original-format checkpoint (``.bin``/``.ckpt``, a torch zip) is read by the
project's restricted reader (`audiosr_model.checkpoint_reader`: no pickle code
runs) and written as safetensors holding the keys inference uses; the groups
it never uses (``model_ema.*``, ``clap.*``, the condition VAE's decoder and
vocoder: `schema.IGNORED_PREFIXES`) are left out, which halves what a
full-size run holds in memory. The copy is cached under the harness cache
(``$AUDIOSR_VERIFY_CACHE`` or ``~/.cache/audiosr-verify``) by the sha256 of the
original file, so a second export or check of the same checkpoint reuses it.

`check_layout` refuses a checkpoint whose keys are not the original's layout
for the preset (one line naming the file and what differs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from audiosr_model.errors import AudioSRError
from audiosr_verify import schema

Progress = Callable[[str], None] | None


@dataclass(frozen=True)
class CheckpointFacts:
    path: Path
    sha256: str
    bytes: int
    format: str
    keys: int
    inference_elements: int  # elements of the tensors inference loads (the time bounds scale with them)

    def to_dict(self) -> dict:
        return {"file": self.path.name, "sha256": self.sha256, "bytes": self.bytes, "format": self.format,
                "keys": self.keys, "inference_elements": self.inference_elements}


def _unused(key: str) -> bool:
    return key.startswith(schema.IGNORED_PREFIXES) or key in schema.IGNORED_KEYS


def check_layout(path: Path, preset: str) -> CheckpointFacts:
    """The checkpoint's keys against the original's manifest of ``preset``; its facts (sha256 read once)."""
    from audiosr_model.weights.checkpoint_reader import inspect_checkpoint, sha256_file
    from audiosr_verify.checks.state_dict import compare_layout
    from audiosr_verify.oracle.manifests import manifest_path

    manifest = manifest_path(preset)  # a configuration file's is written by the original, once
    listing = inspect_checkpoint(path)
    layout = compare_layout({k: (t.shape, t.dtype) for k, t in listing.tensors.items()}, manifest)
    if not layout.ok:
        raise AudioSRError(f"not the original's {_preset_label(preset)} layout: {layout.summary_line()} (e.g. "
                           f"{(layout.missing + layout.unexpected + layout.shape_mismatch)[:2]}); "
                           f"`audiosr-verify parity` lists every key", path)
    elements = sum(_numel(t.shape) for k, t in listing.tensors.items() if not _unused(k))
    return CheckpointFacts(Path(path), sha256_file(path), Path(path).stat().st_size, listing.format,
                           len(listing.tensors), elements)


def _preset_label(preset: str) -> str:
    from audiosr_model.config import is_config_file

    return f"configuration {Path(preset).name}" if is_config_file(preset) else preset


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def cache_dir() -> Path:
    from audiosr_verify.util.cache import layout_cache_dir

    base = layout_cache_dir() or Path.home() / ".cache" / "audiosr-verify"
    return base / "inference-weights"


def inference_copy(facts: CheckpointFacts, progress: Progress = None) -> Path:
    """The cached safetensors copy of ``facts.path`` (made now if absent), keys inference uses only."""
    from safetensors.torch import save_file

    from audiosr_model.weights.checkpoint_reader import load_state_dict
    from audiosr_model.io.publish import publish_file

    target = cache_dir() / f"{facts.sha256}.safetensors"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(f"converting {facts.path.name} to safetensors (once per checkpoint; cached in {target.parent})")
    state = load_state_dict(facts.path, mmap=True)
    kept = {k: v.contiguous() for k, v in state.items() if not _unused(k)}
    publish_file(target, lambda tmp: save_file(kept, str(tmp), metadata={"source_sha256": facts.sha256}),
                 what="converted checkpoint")
    return target


__all__ = ["CheckpointFacts", "cache_dir", "check_layout", "inference_copy"]
