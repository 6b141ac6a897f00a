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
import tempfile
from pathlib import Path

from audiosr_model.errors import AudioSRError
from audiosr_verify.oracle.config_overrides import BUILTIN_PRESETS, request_overrides

MANIFEST_CACHE_VERSION = "1"


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
    from audiosr_verify.checks.state_dict import layout_cache_dir
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


__all__ = ["manifest_path"]
