"""Dump state_dict manifests of the ORIGINAL VAE and vocoder classes.

Run inside the oracle venv (the one with audiosr==0.0.7 installed):

    /work/oracle-venv/bin/python tools/oracle/dump_component_manifests.py [OUTDIR]

Writes ``{key: [shape, dtype]}`` JSON files (default OUTDIR:
``golden/manifests/components/``):

- ``vae_{tiny,basic}.json``: the original ``AutoencoderKL`` built through its
  own constructor, which always attaches a HiFi-GAN as ``vocoder`` (built by
  ``get_vocoder`` -> ``Generator_old`` -> ``remove_weight_norm()``);
- ``vocoder_{tiny,basic}.json``: that ``Generator`` alone.

``basic`` is built on the meta device (no memory). The configs come from the
original code (``get_basic_config``, ``get_vocoder_config_48k``) plus the tiny
overrides of ORACLE.md, not from ``model/config.py``, so the manifests check
our presets instead of repeating them.

The helpers here (import shims, original configs, builders) are also used by
``check_components.py`` on its oracle side. Nothing here imports ``model``.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import os
import sys
import types
from pathlib import Path
from typing import Any, Iterator

import torch

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUTDIR = REPO / "golden" / "manifests" / "components"

# ORACLE.md "A tiny configuration the original accepts".
TINY_DDCONFIG = {"ch": 32, "ch_mult": [1, 2, 2, 4], "num_res_blocks": 1}
TINY_VOCODER = {
    "upsample_initial_channel": 128,
    "resblock_kernel_sizes": [3, 7],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
}


def install_import_shims() -> None:
    """Make the original's VAE/vocoder modules importable offline.

    - ``audiosr/__init__.py`` imports the whole pipeline (and needs the
      network): register a bare package so submodules import on their own;
    - ``torchaudio._extension`` would load a CUDA library that is absent here:
      a stub saying "no extension" (the parts audiosr uses are pure Python);
    - ``torchvision._meta_registrations`` fails on a missing operator: empty stub.
    """
    if "torchaudio._extension" not in sys.modules:
        ext = types.ModuleType("torchaudio._extension")
        ext._IS_TORCHAUDIO_EXT_AVAILABLE = False
        ext._IS_ALIGN_AVAILABLE = False
        ext._load_lib = lambda lib: False
        ext._check_cuda_version = lambda: None

        def fail_if_no_align(func):
            def unavailable(*args, **kwargs):
                raise RuntimeError("torchaudio alignment is stubbed out in the oracle")

            return unavailable

        ext.fail_if_no_align = fail_if_no_align
        sys.modules["torchaudio._extension"] = ext
    sys.modules.setdefault(
        "torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations")
    )
    if "audiosr" not in sys.modules:
        spec = importlib.util.find_spec("audiosr")
        if spec is None or spec.origin is None:
            raise SystemExit("audiosr is not installed in this interpreter: run me in the oracle venv")
        pkg = types.ModuleType("audiosr")
        pkg.__path__ = [os.path.dirname(spec.origin)]
        sys.modules["audiosr"] = pkg


def original_configs(name: str) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """``(ddconfig, embed_dim, vocoder_h)`` of preset ``name`` from the original code."""
    install_import_shims()
    import audiosr.utilities.model as um
    import audiosr.utils as au

    params = au.get_basic_config()["model"]["params"]["first_stage_config"]["params"]
    ddconfig, embed_dim = copy.deepcopy(params["ddconfig"]), params["embed_dim"]
    vocoder_h = um.get_vocoder_config_48k()
    if name == "tiny":
        ddconfig.update(TINY_DDCONFIG)
        vocoder_h.update(TINY_VOCODER)
    elif name != "basic":
        raise ValueError(f"unknown preset {name!r}")
    return ddconfig, embed_dim, vocoder_h


def build_original_vocoder(vocoder_h: dict[str, Any], remove_weight_norm: bool = True):
    """``hifigan.models.Generator`` as ``get_vocoder`` builds it (eval, weight norm removed)."""
    install_import_shims()
    from audiosr.hifigan import AttrDict
    from audiosr.hifigan.models import Generator

    vocoder = Generator(AttrDict(copy.deepcopy(vocoder_h)))
    vocoder.eval()
    if remove_weight_norm:
        vocoder.remove_weight_norm()
    return vocoder


@contextlib.contextmanager
def _vocoder_config(vocoder_h: dict[str, Any], device: str | None) -> Iterator[None]:
    """Let the original ``get_vocoder`` build ``vocoder_h`` (on ``device``).

    ``get_vocoder`` looks ``get_vocoder_config_48k`` up at call time (so
    replacing it changes the config) and ends with ``vocoder.to("cpu")``,
    which meta tensors cannot do: on meta, the device argument is swapped.
    """
    import audiosr.latent_encoder.autoencoder as ae
    import audiosr.utilities.model as um

    saved_cfg, saved_get = um.get_vocoder_config_48k, ae.get_vocoder
    um.get_vocoder_config_48k = lambda: copy.deepcopy(vocoder_h)
    if device is not None:
        ae.get_vocoder = lambda config, _device, mel_bins: saved_get(config, device, mel_bins)
    try:
        yield
    finally:
        um.get_vocoder_config_48k, ae.get_vocoder = saved_cfg, saved_get


def build_original_vae(
    ddconfig: dict[str, Any], embed_dim: int, vocoder_h: dict[str, Any], device: str | None = None
):
    """The original ``AutoencoderKL`` (with its vocoder), in eval mode.

    ``device="meta"`` builds it without allocating memory (for manifests).
    """
    install_import_shims()
    from audiosr.latent_encoder.autoencoder import AutoencoderKL

    with _vocoder_config(vocoder_h, device), (torch.device(device) if device else contextlib.nullcontext()):
        vae = AutoencoderKL(
            ddconfig=copy.deepcopy(ddconfig),
            embed_dim=embed_dim,
            image_key="fbank",
            sampling_rate=48000,
        )
    return vae.eval()


def manifest(module) -> dict[str, list]:
    """``{key: [shape, dtype]}`` of a module's state_dict, in state_dict order."""
    return {
        key: [list(t.shape), str(t.dtype).removeprefix("torch.")]
        for key, t in module.state_dict().items()
    }


def dumps_manifest(data: dict[str, list]) -> str:
    """JSON with one key per line: small diffs when a layout changes."""
    lines = [f" {json.dumps(key)}: {json.dumps(value)}" for key, value in data.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str]) -> int:
    outdir = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTDIR
    outdir.mkdir(parents=True, exist_ok=True)
    for name in ("tiny", "basic"):
        device = "meta" if name == "basic" else None
        ddconfig, embed_dim, vocoder_h = original_configs(name)
        vae = build_original_vae(ddconfig, embed_dim, vocoder_h, device=device)
        with torch.device(device) if device else contextlib.nullcontext():
            vocoder = build_original_vocoder(vocoder_h)
        for kind, module in (("vae", vae), ("vocoder", vocoder)):
            path = outdir / f"{kind}_{name}.json"
            data = manifest(module)
            path.write_text(dumps_manifest(data))
            print(f"{path}: {len(data)} keys")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
