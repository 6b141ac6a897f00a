"""Issue 16: what our HiFi-GAN vocoder's float32 time depends on.

Under glibc's default allocator settings our vocoder took 1.6x the original's
inside its own pipeline (bench_vs_original.py). This times OUR vocoder on one
512-frame mel of the `basic` preset, in one process, in the contexts that
could matter: right after the pipeline (1 DDIM step), called again, with a
contiguous instead of a transposed input, and with the checkpoint's
memory-mapped weights cloned into anonymous memory; with ``--allocator
reuse`` (what `enhance` does, model/runtime/memory.py) or ``glibc`` (glibc's own
thresholds: every large activation a fresh mmap). The process's user and
system CPU seconds are printed: the page faults of fresh mappings show as
system time. Run it under different OMP_WAIT_POLICY values to see the OpenMP
runtime's share.

    python benchmarks/bench_vocoder_context.py CHECKPOINT [--allocator reuse|glibc] [--original]
    # CHECKPOINT e.g. ~/.cache/audiosr-verify/bench/basic-seed0.bin

``--original`` also times the ORIGINAL's ``Generator`` class (audiosr's
hifigan/models.py, from the oracle venv, weight norm removed as the original
does) on the same weights and the same mel, in a child process of the oracle
venv, once under glibc's own thresholds and once with the thresholds raised
through glibc's environment variables (``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` at 1 GiB, what ``--allocator reuse`` sets with
mallopt): the same code, so any difference is the allocator's.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from audiosr_model import pipeline
from audiosr_model.pipeline import Randomness
from audiosr_model.runtime import memory, stages, timings
from audiosr_model.weights.load import load_model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--allocator", choices=["reuse", "glibc"], default="reuse",
                    help="reuse: enhance's setting (model/runtime/memory.py); glibc: glibc's own thresholds")
    ap.add_argument("--original", action="store_true",
                    help="also time the original's Generator class on the same weights and mel (oracle venv)")
    args = ap.parse_args()
    if args.allocator == "reuse":
        os.environ["AUDIOSR_MALLOC"] = "reuse"
        memory.configure()
    net, _ = load_model(args.checkpoint, "basic")
    print(f"threads {torch.get_num_threads()}, allocator {args.allocator} (thresholds raised: "
          f"{memory.configured()}), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}, "
          f"load avg {os.getloadavg()[0]:.1f}")
    x = (0.1 * np.sin(np.arange(245760) * 2 * np.pi * 440 / 48000)).astype(np.float32)
    prep = pipeline.prepare_segment(x, 5.12, Randomness(42), None)
    collected = timings.Timings()
    with timings.collecting(collected):
        # the product's stage hook: timings and the stage-scoped memory policy, as enhance runs it
        mel = pipeline.generate(net, prep, Randomness(42), 1, 3.5, stages=stages.stage).mel
    print(f"in the pipeline (1 step): vocoder {collected.seconds['vocoder']:.2f} s")
    voc = net.first_stage_model.vocoder

    def timed(what: str, x: torch.Tensor) -> None:
        t, cpu = time.perf_counter(), os.times()
        with torch.no_grad(), memory.network_stage():  # as the pipeline runs every network
            voc(x)
        end = os.times()
        print(f"{what}: {time.perf_counter() - t:.2f} s (user {end.user - cpu.user:.1f} s, "
              f"system {end.system - cpu.system:.1f} s)")

    timed("again, transposed input (as the pipeline)", mel.squeeze(1).transpose(1, 2))
    timed("contiguous input", mel.squeeze(1).transpose(1, 2).contiguous())
    with torch.no_grad():
        for p in net.parameters():
            p.data = p.data.clone()
    timed("weights cloned out of the memory map", mel.squeeze(1).transpose(1, 2))
    if args.original:
        time_original(net, mel.squeeze(1).transpose(1, 2).contiguous())
    return 0


ORIGINAL_GENERATOR = r'''
import importlib.util, json, os, sys, time
import torch
from safetensors.torch import load_file
weights, config = sys.argv[1], json.loads(sys.argv[2])
# hifigan/models.py imports only torch: load it by path, without audiosr's package __init__ (network downloads)
spec = importlib.util.find_spec("audiosr")
path = os.path.join(os.path.dirname(spec.origin), "hifigan", "models.py")
mod_spec = importlib.util.spec_from_file_location("original_hifigan_models", path)
models = importlib.util.module_from_spec(mod_spec)
mod_spec.loader.exec_module(models)
class H(dict):
    __getattr__ = dict.__getitem__
g = models.Generator(H(config))
g.remove_weight_norm()  # what the original does before inference
sd = load_file(weights)
mel = sd.pop("__mel__")
g.load_state_dict(sd, strict=True)
g.eval()
for i in range(2):
    t, cpu = time.perf_counter(), os.times()
    with torch.no_grad():
        g(mel)
    end = os.times()
    print(f"original Generator, call {i + 1}: {time.perf_counter() - t:.2f} s (user {end.user - cpu.user:.1f} s, "
          f"system {end.system - cpu.system:.1f} s)", flush=True)
'''


def time_original(net, mel: torch.Tensor) -> None:
    """The original's Generator on our vocoder's weights and this mel, in the oracle venv, both allocators."""
    import json
    import subprocess
    import sys
    import tempfile
    from dataclasses import asdict
    from pathlib import Path

    from safetensors.torch import save_file

    from audiosr_verify.oracle import driver

    cfg = asdict(net.config.vocoder)
    config = {k: (list(map(list, v)) if k == "resblock_dilation_sizes" else (list(v) if isinstance(v, tuple) else v))
              for k, v in cfg.items()}
    with tempfile.TemporaryDirectory(prefix="bench_vocoder.") as tmp:
        weights = Path(tmp) / "vocoder.safetensors"
        state = {k: v.contiguous().clone() for k, v in net.first_stage_model.vocoder.state_dict().items()}
        state["__mel__"] = mel
        save_file(state, str(weights))
        del state
        script = Path(tmp) / "original_generator.py"
        script.write_text(ORIGINAL_GENERATOR)
        base = {k: v for k, v in os.environ.items()
                if k not in ("PYTHONPATH", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
        for label, extra in (("glibc's thresholds", {}),
                             ("thresholds raised", {"MALLOC_MMAP_THRESHOLD_": str(memory.MMAP_THRESHOLD),
                                                    "MALLOC_TRIM_THRESHOLD_": str(memory.TRIM_THRESHOLD)})):
            print(f"-- the original's Generator in the oracle venv, {label}", flush=True)
            proc = subprocess.run([str(driver.oracle_python()), str(script), str(weights), json.dumps(config)],
                                  env=dict(base, **extra), capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("original")]
            print("\n".join(lines) if proc.returncode == 0 else proc.stderr[-2000:], flush=True)
            if proc.returncode != 0:
                sys.exit(f"the original's Generator failed (exit {proc.returncode})")


if __name__ == "__main__":
    raise SystemExit(main())
