"""The original's key manifest of a preset: bundled for the presets, written by the original for a config file.

A manifest (every state_dict key of the original's network with its shape
and dtype, `runner.py manifest`) is what a checkpoint's layout is checked
against. The two presets' manifests ship in ``golden/manifests``. For a
configuration file (``oracle export --config``) there is none to ship: the
original builds the network with that configuration's overrides and writes it
once, cached under ``<cache>/manifests/`` by the overrides' sha256 and the
oracle's versions (another original, another manifest).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiosr_model.errors import AudioSRError
from audiosr_model.weights.checkpoint_reader import _ITEMSIZE
from audiosr_verify.oracle.config_overrides import BUILTIN_PRESETS, request_overrides

MANIFEST_CACHE_VERSION = "1"
MANIFEST_SCHEMA_VERSION = 1  # of the manifest files (golden/manifests/*.json, runner.py manifest)
Spec = tuple[tuple[int, ...], str]  # (shape, dtype): a key as the layout checks see it


@dataclass(frozen=True)
class Manifest:
    path: str
    keys: dict[str, Spec]
    source: dict[str, Any] | None
    preset: str | None


def _spec_from_json(key: str, value: Any, path: Any) -> Spec:
    # {"shape": [...], "dtype": "float32"} (manifest) or [[...], "float32"] (component manifests)
    if isinstance(value, dict):
        shape, dtype = value.get("shape"), value.get("dtype")
    elif isinstance(value, list) and len(value) == 2:
        shape, dtype = value
    else:
        raise AudioSRError(f"manifest entry {key!r} is not {{'shape': [...], 'dtype': ...}}", path)
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise AudioSRError(f"manifest entry {key!r} has a bad shape {shape!r}", path)
    if not isinstance(dtype, str) or dtype.replace("torch.", "") not in _ITEMSIZE:
        raise AudioSRError(f"manifest entry {key!r} has an unknown dtype {dtype!r}", path)
    return tuple(shape), dtype.replace("torch.", "")


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read a key manifest ({"schema_version", "source", "preset", "keys": {key: {shape, dtype}}})."""
    from audiosr_verify.util.safe_open import read_json

    data = read_json(path, "manifest")  # regular file, bounded size, one-line errors
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise AudioSRError("JSON without a 'keys' object: not a key manifest", path)
    version = data.get("schema_version", MANIFEST_SCHEMA_VERSION)
    if version != MANIFEST_SCHEMA_VERSION:
        raise AudioSRError(f"manifest schema_version {version!r} is not supported "
                           f"(expected {MANIFEST_SCHEMA_VERSION})", path)
    keys = {str(k): _spec_from_json(k, v, path) for k, v in data["keys"].items()}
    source = data.get("source") if isinstance(data.get("source"), dict) else None
    preset = data.get("preset") if isinstance(data.get("preset"), str) else None
    return Manifest(str(path), keys, source, preset)


def manifest_path(preset: str, python=None) -> Path:
    """The manifest of ``preset`` (a built-in name or a configuration file), written first if need be."""
    from audiosr_verify.util.paths import data_path

    if preset in BUILTIN_PRESETS:
        path = data_path("manifests", f"audiosr_{preset}.json")
        if not path.is_file():
            raise AudioSRError(f"no key manifest for preset {preset!r}", path)
        return path
    return _config_manifest(preset, python)


def _config_manifest(preset: str, python=None) -> Path:
    from audiosr_verify.util.cache import layout_cache_dir
    from audiosr_verify.oracle import driver
    from audiosr_verify.oracle.venv import requirements_hash
    from audiosr_verify.util.atomic import atomic_write

    overrides = request_overrides(preset)
    python_path = str(driver.oracle_python(python))
    key = json.dumps({"v": MANIFEST_CACHE_VERSION, "overrides": overrides, "oracle": python_path,
                      "requirements": requirements_hash()}, sort_keys=True)  # another original: another manifest
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    base = layout_cache_dir() or Path(tempfile.gettempdir()) / "audiosr-verify"
    path = base / "manifests" / f"config-{digest}.json"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="audiosr-oracle-") as work:
        tmp = Path(work) / "manifest.json"
        driver.run("manifest", {"preset": preset, "out": str(tmp)}, work, python=python)
        atomic_write(path, tmp.read_bytes())
    return path


__all__ = ["MANIFEST_SCHEMA_VERSION", "Manifest", "manifest_path", "read_manifest"]
