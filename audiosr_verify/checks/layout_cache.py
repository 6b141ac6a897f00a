"""Our network's state-dict layout for a preset, from a fingerprinted cache when it can be.

Building the skeleton needs torch and about a second for ``basic``; the layout (every parameter and
buffer with its shape and dtype, and the declared ignore groups) is cached under `util.cache`'s
folder, keyed by the sha256 of every source file of the model package, torch's version and the
preset, so any code change rebuilds it. A damaged or read-only cache only costs speed.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from audiosr_model.errors import AudioSRError
from audiosr_verify.checks.layout_keys import Spec
from audiosr_verify.util.cache import layout_cache_dir

LAYOUT_CACHE_VERSION = 1


@dataclass(frozen=True)
class ModelLayout:
    """Our network's parameters and buffers for a preset, and its declared ignore groups."""

    preset: str
    specs: dict[str, Spec]
    groups: tuple  # model.checkpoint.IgnoreGroup, in the order classify_keys tries them
    fingerprint: str  # sha256 of the model sources, torch version and preset
    cached: bool  # read from the layout cache instead of building the skeleton

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "keys": len(self.specs), "fingerprint": self.fingerprint,
                "cached": self.cached, "ignore_groups": [g.name for g in self.groups]}


def preset_tag(preset: str) -> str:
    """A preset's name, or for a configuration file ``config-`` and its content's sha256 (what the layout
    depends on: the same file moved is the same layout, an edited one is another)."""
    import hashlib

    from audiosr_model.config import is_config_file

    if not is_config_file(preset):
        return preset
    from audiosr_model.io.safe_open import MAX_CONFIG_BYTES, read_bytes

    return "config-" + hashlib.sha256(read_bytes(preset, "configuration", max_bytes=MAX_CONFIG_BYTES)).hexdigest()[:16]


def _layout_fingerprint(preset: str) -> str:
    """What the skeleton's layout depends on: the model package's sources and torch's version."""
    import hashlib
    import importlib.metadata

    import audiosr_model as model

    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "unknown"
    digest = hashlib.sha256(f"{LAYOUT_CACHE_VERSION}\0{preset_tag(preset)}\0{torch_version}\0".encode())
    root = Path(model.__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _read_cached_layout(path: Path) -> tuple[dict[str, Spec], list[str]] | None:
    from audiosr_verify.util.safe_open import read_json

    try:
        data = read_json(path, "layout cache")  # through the one opener: a pipe or device here never blocks
        specs = {k: (tuple(shape), dtype) for k, (shape, dtype) in data["specs"].items()}
        return specs, list(data["groups"])
    except (AudioSRError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent or damaged: rebuild


def _write_cached_layout(path: Path, specs: Mapping[str, Spec], group_names: list[str]) -> None:
    from audiosr_verify.util.atomic import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"specs": {k: [list(s), d] for k, (s, d) in specs.items()},
                                       "groups": group_names}), what="layout cache")
    except (AudioSRError, OSError):
        pass  # a read-only cache (or another run writing it) only costs speed


@functools.lru_cache(maxsize=8)
def model_layout(preset: str, cache: bool = True) -> ModelLayout:
    """Our network's layout (`model_specs(skeleton(config))`), from a fingerprinted cache if possible.

    Building the skeleton needs torch and about a second for ``basic``; the
    cache entry is keyed by the sha256 of every source file of the ``model``
    package, torch's version and the preset, so any code change rebuilds it.
    """
    from audiosr_model.weights.checkpoint import FIRST_STAGE_ENCODER_GROUP, IGNORE_GROUPS

    fingerprint = _layout_fingerprint(preset)
    cache_dir = layout_cache_dir() if cache else None
    path = cache_dir / f"layout-{preset_tag(preset)}-{fingerprint[:24]}.json" if cache_dir else None
    known = {g.name: g for g in IGNORE_GROUPS + (FIRST_STAGE_ENCODER_GROUP,)}
    hit = _read_cached_layout(path) if path else None
    if hit is not None and all(name in known for name in hit[1]):
        specs, names = hit
        return ModelLayout(preset, specs, tuple(known[n] for n in names), fingerprint, True)
    from audiosr_model.weights.checkpoint import groups_for, model_specs
    from audiosr_model.config import preset as get_preset
    from audiosr_model.weights.load import skeleton

    net = skeleton(get_preset(preset))
    specs, groups = model_specs(net), groups_for(net)
    if path is not None:
        _write_cached_layout(path, specs, [g.name for g in groups])
    return ModelLayout(preset, specs, tuple(groups), fingerprint, False)


def expected_layout(preset: str) -> tuple[dict[str, Spec], tuple]:
    """(specs of our network's parameters and buffers, its declared ignore groups)."""
    layout = model_layout(preset)
    return layout.specs, layout.groups


__all__ = ["LAYOUT_CACHE_VERSION", "ModelLayout", "expected_layout", "model_layout", "preset_tag"]
