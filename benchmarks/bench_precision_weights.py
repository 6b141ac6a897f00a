"""Issue 25: the UNet's weights cast to bf16 once against autocast casting them on every call.

Under ``torch.autocast`` a convolution or linear layer computes in bfloat16 from its float32 weight, and
autocast caches no cast of a weight that does not require grad: every UNet call casts every weight
again. `audiosr_model.runtime.precision.cast_weights_once` stores them in bfloat16 once. This times one
guided UNet call (batch 2, the DDIM loop's) both ways, on the same network and inputs, and checks that
the outputs are bit for bit equal (the cast is the same rounding whenever it happens).

    python benchmarks/bench_precision_weights.py [--checkpoint basic.bin --preset basic] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from audiosr_model.runtime import memory
from audiosr_model.runtime.precision import autocast_module, cast_weights_once


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="original-format checkpoint or safetensors (default: random tiny weights)")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
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
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
