"""Dump the state_dict manifest of the ORIGINAL AudioSR UNet (tiny and basic).

Run inside the oracle venv (the one with audiosr==0.0.7 installed)::

    /work/oracle-venv/bin/python tools/oracle/dump_unet_manifest.py \
        golden/manifests/components

Writes ``unet_tiny.json`` and ``unet_basic.json``: ``{key: [shape, dtype]}`` in
state_dict order. The basic model is built on the meta device (no memory).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

# Keyword arguments of the original openaimodel.UNetModel. Basic: the
# "unet_config" params of audiosr/utils.py get_basic_config(); tiny: ORACLE.md
# (mirrored by model.config.tiny()). Hard-coded so the oracle does not depend
# on our package.
UNET_KWARGS = {
    "basic": dict(
        image_size=64,
        in_channels=32,
        out_channels=16,
        model_channels=128,
        attention_resolutions=[8, 4, 2],
        num_res_blocks=2,
        channel_mult=[1, 2, 3, 5],
        num_head_channels=32,
        extra_sa_layer=True,
        use_spatial_transformer=True,
        transformer_depth=1,
    ),
    "tiny": dict(
        image_size=64,
        in_channels=32,
        out_channels=16,
        model_channels=32,
        attention_resolutions=[2],
        num_res_blocks=1,
        channel_mult=[1, 2],
        num_head_channels=16,
        extra_sa_layer=True,
        use_spatial_transformer=True,
        transformer_depth=1,
    ),
}


def import_original_unet():
    """Return the original UNetModel class without running audiosr/__init__.py.

    The package __init__ pulls in the whole pipeline (and the network), so a
    bare package object pointing at the installed directory stands in for it.
    """
    if "audiosr" not in sys.modules:
        spec = importlib.util.find_spec("audiosr")
        if spec is None or spec.origin is None:
            raise SystemExit("audiosr is not installed in this interpreter (use the oracle venv)")
        pkg = types.ModuleType("audiosr")
        pkg.__path__ = [os.path.dirname(spec.origin)]
        sys.modules["audiosr"] = pkg
    from audiosr.latent_diffusion.modules.diffusionmodules.openaimodel import UNetModel

    return UNetModel


def build_original(name: str, device: str = "cpu"):
    """The original UNetModel for preset ``name`` on ``device``."""
    import torch

    UNetModel = import_original_unet()
    with torch.device(device):
        return UNetModel(**UNET_KWARGS[name])


def manifest(model) -> dict[str, list]:
    """{key: [shape, dtype]} for every state_dict entry, in order."""
    return {
        key: [list(t.shape), str(t.dtype).removeprefix("torch.")]
        for key, t in model.state_dict().items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="e.g. golden/manifests/components")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, device in (("tiny", "cpu"), ("basic", "meta")):
        entries = manifest(build_original(name, device))
        path = args.out_dir / f"unet_{name}.json"
        path.write_text(dumps_manifest(entries))
        n_params = sum(_numel(shape) for shape, _ in entries.values())
        print(f"{path}: {len(entries)} keys, {n_params} parameters")


def dumps_manifest(entries: dict[str, list]) -> str:
    """JSON with one key per line: small diffs, still plain JSON."""
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in entries.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


if __name__ == "__main__":
    main()
