"""Issue 25: the UNet's weights cast to bf16 once against autocast casting them on every call.

Under ``torch.autocast`` a convolution or linear layer computes in bfloat16 from its float32 weight, and
autocast caches no cast of a weight that does not require grad: every UNet call casts every weight
again. `audiosr_model.runtime.precision.cast_weights_once` stores them in bfloat16 once. This times one
guided UNet call (batch 2, the DDIM loop's) both ways, on the same network and inputs, and checks that
the outputs are bit for bit equal (the cast is the same rounding whenever it happens).

    python benchmarks/bench_precision_weights.py [--checkpoint basic.bin --preset basic] [--repeats 3]
        [--enhance INPUT.wav --steps 50]

``--enhance`` also runs ``enhance --precision bf16`` on INPUT with the checkpoint both ways, back to back, each
in its own process (``CAST_ONCE`` emptied for the per-call side): its stage times, peak RSS, and whether
the two output files are equal bit for bit.
"""

from __future__ import annotations

import argparse
import time

import torch

from audiosr_model.runtime import memory
from audiosr_model.runtime.precision import autocast_module, cast_weights_once


def _enhance_side(side: str, checkpoint: str, preset: str, wav: str, steps: int, out: str) -> None:
    """One side of ``--enhance``, in this (child) process: prints its DDIM seconds and peak RSS as JSON."""
    import contextlib
    import io
    import json
    import resource

    from audiosr_model.runtime import precision
    from audiosr_verify.cli.main import main as cli

    if side == "per-call":
        precision.CAST_ONCE = ()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = cli(["enhance", wav, "--output", out, "--checkpoint", checkpoint, "--preset", preset, "--precision",
                  "bf16", "--steps", str(steps), "--level", "faithful", "--overwrite", "--timings-json", out + ".json"])
    stages = json.load(open(out + ".json"))["stages"]
    print(json.dumps({"rc": rc, "ddim_s": stages["ddim"]["seconds"], "total_s": sum(
        v["seconds"] for k, v in stages.items() if k != "ddim_step"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))


def compare_enhance(checkpoint: str, preset: str, wav: str, steps: int) -> bool:
    import json
    import subprocess
    import sys
    import tempfile

    import numpy as np
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="bench_precision_weights.") as tmp:
        outs = {}
        for side in ("per-call", "once"):
            out = f"{tmp}/{side}.wav"
            proc = subprocess.run([sys.executable, __file__, "--side", side, "--checkpoint", checkpoint, "--preset",
                                   preset, "--enhance", wav, "--steps", str(steps), "--out", out],
                                  capture_output=True, text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"  enhance --precision bf16, {steps} steps, weights cast {side:8s}: DDIM {r['ddim_s']:.1f} s, "
                  f"stages {r['total_s']:.1f} s, peak RSS {r['peak_rss_mb']} MB")
            outs[side] = sf.read(out, dtype="float32")[0]
        same = bool(np.array_equal(outs["per-call"], outs["once"]))
        print(f"  output files bit for bit equal: {same}")
        return same


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="original-format checkpoint or safetensors (default: random tiny weights)")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--enhance", metavar="INPUT", help="also enhance INPUT both ways (needs --checkpoint)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--side", choices=["per-call", "once"], help=argparse.SUPPRESS)  # the child of --enhance
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        _enhance_side(args.side, args.checkpoint, args.preset, args.enhance, args.steps, args.out)
        return 0
    memory.configure()
    if args.checkpoint:
        from audiosr_model.weights.load import load_model

        net, _ = load_model(args.checkpoint, args.preset)
    else:
        from audiosr_model.weights.load import random_model

        net = random_model(args.preset)
    autocast_module(net.unet, torch.bfloat16, "cpu")
    latent = (2, net.config.unet.out_channels, 64, 32)  # one 5.12 s window: 512 mel frames
    g = torch.Generator().manual_seed(0)
    x, c = torch.randn(latent, generator=g), torch.randn(latent, generator=g)
    t = torch.full((2,), 500)

    def timed() -> tuple[torch.Tensor, list[float]]:
        with torch.no_grad():
            out = net.unet_forward(x, t, c)  # warm-up
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                out = net.unet_forward(x, t, c)
                times.append(time.perf_counter() - start)
        return out, times

    per_call, t_per_call = timed()
    n = cast_weights_once(net.unet, torch.bfloat16)
    once, t_once = timed()
    best = (min(t_per_call), min(t_once))
    print(f"{args.preset}: one guided UNet call (batch 2), bf16, {args.repeats} calls each, best of them")
    print(f"  autocast casting the float32 weights per call: {best[0]:.3f} s  {[round(v, 3) for v in t_per_call]}")
    print(f"  weights cast once ({n} layers):                 {best[1]:.3f} s  {[round(v, 3) for v in t_once]}"
          f"  ({best[1] / best[0]:.2f}x)")
    same = torch.equal(per_call, once)
    print(f"  outputs bit for bit equal: {same}")
    if args.enhance:
        if not args.checkpoint:
            raise SystemExit("--enhance needs --checkpoint")
        same = compare_enhance(args.checkpoint, args.preset, args.enhance, args.steps) and same
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
