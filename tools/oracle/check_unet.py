"""Numerical check of ``model.unet.UNetModel`` against the ORIGINAL AudioSR UNet.

Run from the project venv (it drives the oracle venv through a subprocess)::

    /work/venv/bin/python tools/oracle/check_unet.py --preset tiny
    /work/venv/bin/python tools/oracle/check_unet.py --preset basic

1. Oracle side (``--oracle-side``, inside the oracle venv): build the original
   UNet, overwrite EVERY parameter with ``normal(0, std)`` from a fixed seed (so
   the zero_module layers are not zero and every path contributes), run it on
   a seeded random ``x`` and fixed timesteps, and save ``state.safetensors``
   and ``io.safetensors`` (x, timesteps, out) under ``--workdir/<preset>``.
2. Project side: load that state dict strictly into our UNet, run the same
   inputs and report the max abs (and relative) error; exit 1 above ``--tol``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ORACLE_PYTHON = "/work/oracle-venv/bin/python"

# Input shape and timesteps per preset: tiny follows the brief ([2,32,64,32],
# one early and one mid timestep); basic uses batch 1 to bound memory.
CASES = {
    "tiny": {"shape": (2, 32, 64, 32), "timesteps": [1, 501]},
    "basic": {"shape": (1, 32, 64, 32), "timesteps": [501]},
}


def oracle_side(preset: str, workdir: Path, seed: int, std: float) -> None:
    """Build, randomise and run the original UNet; save weights and I/O."""
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(HERE))
    from dump_unet_manifest import build_original

    torch.manual_seed(seed)
    model = build_original(preset).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)
    case = CASES[preset]
    x = torch.randn(case["shape"], generator=torch.Generator().manual_seed(seed + 1))
    t = torch.tensor(case["timesteps"], dtype=torch.long)
    with torch.no_grad():
        start = time.perf_counter()
        out = model(x, t, context_list=[], y=None, context_attn_mask_list=[])  # as DiffusionWrapper
        elapsed = time.perf_counter() - start
    out_dir = workdir / preset
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out_dir / "state.safetensors"))
    save_file({"x": x, "timesteps": t, "out": out.contiguous()}, str(out_dir / "io.safetensors"))
    print(f"oracle {preset}: forward {elapsed:.3f} s, |out| max {out.abs().max().item():.4g}")


def project_side(preset: str, workdir: Path) -> float:
    """Load the oracle's weights into our UNet and return the max abs error."""
    import torch
    from safetensors.torch import load_file

    sys.path.insert(0, str(REPO))
    from audiosr_model import config
    from audiosr_model.nets.unet import UNetModel

    model = UNetModel(config.preset(preset).unet).eval()
    model.load_state_dict(load_file(str(workdir / preset / "state.safetensors")), strict=True)
    io = load_file(str(workdir / preset / "io.safetensors"))
    with torch.no_grad():
        start = time.perf_counter()
        out = model(io["x"], io["timesteps"])
        elapsed = time.perf_counter() - start
    ref = io["out"]
    err = (out - ref).abs().max().item()
    rel = err / ref.abs().max().item()
    print(
        f"ours   {preset}: forward {elapsed:.3f} s, shape {tuple(out.shape)}, "
        f"max abs err {err:.3e}, relative to max|out| {rel:.3e}"
    )
    return err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=[*CASES, "all"], default="tiny")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/unet_check"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--std", type=float, default=0.05, help="std of the random weights")
    parser.add_argument("--tol", type=float, default=1e-5, help="max abs error allowed")
    parser.add_argument("--oracle-python", default=ORACLE_PYTHON)
    parser.add_argument("--oracle-side", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    presets = list(CASES) if args.preset == "all" else [args.preset]
    if args.oracle_side:
        for preset in presets:
            oracle_side(preset, args.workdir, args.seed, args.std)
        return 0

    failed = False
    for preset in presets:
        # One preset per subprocess so the original's memory is freed before ours.
        cmd = [
            args.oracle_python, str(Path(__file__).resolve()), "--oracle-side",
            "--preset", preset, "--workdir", str(args.workdir),
            "--seed", str(args.seed), "--std", str(args.std),
        ]
        subprocess.run(cmd, check=True)
        err = project_side(preset, args.workdir)
        if not err <= args.tol:
            print(f"FAIL {preset}: max abs err {err:.3e} > tol {args.tol:.1e}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
