"""Issue 16 lead: does our HiFi-GAN vocoder's float32 time depend on how it is called?

Inside `enhance`, our vocoder took 1.6x the original's inside its own pipeline
(bench_vs_original.py). This times OUR vocoder on one 512-frame mel of the
`basic` preset, in one process, in the contexts that could matter: right after
the pipeline (1 DDIM step), called again, with a contiguous instead of a
transposed input, and with the checkpoint's memory-mapped weights cloned into
anonymous memory. Run it under different OMP_WAIT_POLICY values to see the
OpenMP runtime's share.

    python benchmarks/bench_vocoder_context.py CHECKPOINT   # e.g. ~/.cache/audiosr-verify/bench/basic-seed0.bin
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from audiosr_model import pipeline, timings
from audiosr_model.load import load_model
from audiosr_model.pipeline import Randomness


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    args = ap.parse_args()
    net, _ = load_model(args.checkpoint, "basic")
    print(f"threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}, "
          f"load avg {os.getloadavg()[0]:.1f}")
    x = (0.1 * np.sin(np.arange(245760) * 2 * np.pi * 440 / 48000)).astype(np.float32)
    prep = pipeline.prepare_segment(x, 5.12, Randomness(42), None)
    collected = timings.Timings()
    with timings.collecting(collected):
        mel = pipeline.generate(net, prep, Randomness(42), 1, 3.5).mel
    print(f"in the pipeline (1 step): vocoder {collected.seconds['vocoder']:.2f} s")
    voc = net.first_stage_model.vocoder

    def timed(what: str, x: torch.Tensor) -> None:
        t = time.perf_counter()
        with torch.no_grad():
            voc(x)
        print(f"{what}: {time.perf_counter() - t:.2f} s")

    timed("again, transposed input (as the pipeline)", mel.squeeze(1).transpose(1, 2))
    timed("contiguous input", mel.squeeze(1).transpose(1, 2).contiguous())
    with torch.no_grad():
        for p in net.parameters():
            p.data = p.data.clone()
    timed("weights cloned out of the memory map", mel.squeeze(1).transpose(1, 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
