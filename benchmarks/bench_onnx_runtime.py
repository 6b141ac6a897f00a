"""Benchmark: the ONNX Runtime port (examples/subjects/onnx_runtime.py) against its tolerances and our speed.

1. `check` of the port (every fixture input, both views), with GroupNorm
   exported as torch.onnx does (``groupnorm=onnx``) and with float64
   statistics (``groupnorm=float64``, the port's default): per ONNX stage the
   largest difference from the original (= its minimal passing atol), and the
   tensor closest to its own schema tolerance, with the margin;
2. speed: each network on the port's input shape for one 5.12 s segment
   (512 mel frames; the UNet on a guidance batch of 2), median of N runs,
   PyTorch (our `audiosr_model`) beside ONNX Runtime (CPU EP, both GroupNorm
   exports), the same number of threads for all.

    python benchmarks/bench_onnx_runtime.py [--repeat 5] [--threads N] [--speed-only] [--json FILE]

Timings move with the machine's load: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audiosr_verify import schema  # noqa: E402
from audiosr_verify.checks.subject_check import run_check, write_shared_checkpoint  # noqa: E402
from audiosr_verify.subject import SubjectContext  # noqa: E402
from audiosr_verify.subjects.loader import load_subject  # noqa: E402

PORT = str(ROOT / "examples" / "subjects" / "onnx_runtime.py") + ":make_subject"
ONNX_STAGES = ("condition_encode", "unet", "ddim_step", "vae_decode", "vocoder")


def _median_seconds(fn, repeat: int) -> float:
    fn()  # warm-up (allocations, ORT's first-run optimisation)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tolerances(onnx_dir: str, groupnorm: str) -> tuple[list[dict], bool, str]:
    """Per ONNX stage: the worst difference, and the tightest ratio of a tensor's tolerance to its difference."""
    result = run_check(PORT, options={"onnx_dir": onnx_dir, "groupnorm": groupnorm})
    rows = []
    for s in result.stages.stages("teacher"):
        if s.name not in ONNX_STAGES:
            continue
        comps = [c for c in result.stages.view("teacher") if c.stage == s.name]
        tight = min(comps, key=lambda c: schema.tolerance(c.name).atol / max(c.max_abs, 1e-30))
        atol = schema.tolerance(tight.name).atol
        chained = next((c for c in result.stages.stages("chained") if c.name == s.name), None)
        rows.append({"stage": s.name, "status": s.status, "max_abs": s.max_abs, "tightest_tensor": tight.name,
                     "tightest_max_abs": tight.max_abs, "schema_atol": atol,
                     "margin": atol / tight.max_abs if tight.max_abs else None,
                     "chained_max_abs": chained.max_abs if chained else None,
                     "chained_status": chained.status if chained else None})
    return rows, result.ok, result.summary_line()


def _port(onnx_dir: str, groupnorm: str, threads: int):
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = str(write_shared_checkpoint(tmp))
        port = load_subject(PORT, SubjectContext(ckpt, "tiny", options={"onnx_dir": onnx_dir, "groupnorm": groupnorm,
                                                                        "threads": str(threads)}))
        port.activate()
    return port


def speed(onnx_dirs: dict[str, str], repeat: int, threads: int) -> list[dict]:
    torch.set_num_threads(threads)
    ports = {gn: _port(d, gn, threads) for gn, d in onnx_dirs.items()}
    port = ports["float64"]
    net, rng = port.net, np.random.default_rng(0)
    mel = rng.standard_normal((1, 1, 512, 256)).astype(np.float32)
    z = rng.standard_normal((1, 16, 64, 32)).astype(np.float32)
    x_in = rng.standard_normal((2, 32, 64, 32)).astype(np.float32)
    t = np.array([501, 501])
    cases = {
        "condition encoder": (lambda: net.condition_posterior(torch.from_numpy(mel)),
                              lambda p: p.condition_encode(mel[0, 0])),
        "UNet (batch 2)": (lambda: net.unet(torch.from_numpy(x_in), torch.from_numpy(t)),
                           lambda p: p._run("unet", x_in=x_in, t=t)),
        "VAE decoder": (lambda: net.decode(torch.from_numpy(z)), lambda p: p.vae_decode(z)),
        "vocoder": (lambda: net.vocode(torch.from_numpy(mel)), lambda p: p.vocoder(mel)),
    }
    rows = []
    with torch.no_grad():
        for name, (ours, onnx) in cases.items():
            row = {"network": name, "pytorch_s": _median_seconds(ours, repeat)}
            for gn, p in ports.items():
                row[f"onnxruntime_{gn}_s"] = _median_seconds(lambda run=onnx, port=p: run(port), repeat)
            rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--speed-only", action="store_true", help="export and time the networks, no check")
    ap.add_argument("--json", help="write the measurements here")
    args = ap.parse_args(argv)
    import onnxruntime

    checks = {}
    with tempfile.TemporaryDirectory(prefix="onnx-bench-") as root:
        dirs = {gn: str(Path(root) / gn) for gn in ("onnx", "float64")}
        for gn, d in dirs.items():
            if args.speed_only:
                break
            start = time.monotonic()
            rows, ok, summary = tolerances(d, gn)
            checks[gn] = {"ok": ok, "summary": summary, "seconds": time.monotonic() - start, "stages": rows}
        load_before = os.getloadavg()[0]
        timing = speed(dirs, args.repeat, args.threads)
        load = max(load_before, os.getloadavg()[0])
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads")
    for gn, c in checks.items():
        print(f"\ngroupnorm={gn}: {c['summary']} ({c['seconds']:.0f} s with the export)")
        print("\n| stage | teacher-forced | max abs diff | tightest tensor: diff / its atol (margin) "
              "| chained | chained max abs |")
        print("|---|---|---|---|---|---|")
        for r in c["stages"]:
            margin = f"{r['margin']:.1f}x" if r["margin"] else "-"
            chained = f"{r['chained_max_abs']:.3g}" if r["chained_max_abs"] is not None else "-"
            print(f"| {r['stage']} | {r['status']} | {r['max_abs']:.3g} | {r['tightest_tensor']}: "
                  f"{r['tightest_max_abs']:.3g} / {r['schema_atol']:g} ({margin}) | {r['chained_status'] or '-'} "
                  f"| {chained} |")
    print(f"\nload average {load:.1f} while timing")
    print("\n| network (512 frames) | PyTorch | ONNX Runtime, float64 GroupNorm | ONNX Runtime, torch.onnx GroupNorm |")
    print("|---|---|---|---|")
    for r in timing:
        a, b, c = r["pytorch_s"], r["onnxruntime_float64_s"], r["onnxruntime_onnx_s"]
        print(f"| {r['network']} | {a * 1000:.0f} ms | {b * 1000:.0f} ms ({a / b:.2f}x) | {c * 1000:.0f} ms "
              f"({a / c:.2f}x) |")
    if args.json:
        Path(args.json).write_text(json.dumps({"checks": checks, "speed": timing, "threads": args.threads,
                                               "load_average": load},
                                              indent=2) + "\n")
    return 0 if args.speed_only or checks["float64"]["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
