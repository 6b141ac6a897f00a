"""Full-size `basic` preset, random weights: time and peak RSS of one enhancement.

Issue 2 acceptance: 5.12 s of audio, 2 DDIM steps, within 8 GB peak RSS (the
original needs 7.4 GB, because it also builds CLAP and the EMA copy).
Each run is a subprocess of `audiosr-verify enhance`, so its peak RSS is
measured alone (getrusage of the children).

    python benchmarks/bench_basic_enhance.py [--seconds 5.12] [--steps 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def run(cmd: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    # ru_maxrss of children is the max over all children so far: run the big one last
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(max(peak_kb, before) / 1024)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.12)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.wav"
        rate = 16000
        t = np.arange(int(args.seconds * rate)) / rate
        sf.write(src, 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 3100 * t), rate)
        base = [sys.executable, "-m", "audiosr_verify.cli.main", "enhance", str(src), "--random-weights",
                "--steps", str(args.steps), "--device", "cpu", "--overwrite"]
        results = {}
        results["tiny"] = run(base + ["--preset", "tiny", "-o", str(Path(tmp) / "tiny")])
        results["basic"] = run(base + ["--preset", "basic", "-o", str(Path(tmp) / "basic")])
        y, sr = sf.read(Path(tmp) / "basic" / "in.wav")
        results["basic"]["output_samples"] = len(y)
    print(f"{'preset':<8}{'wall s':>10}{'peak RSS MB':>14}")
    for name, r in results.items():
        print(f"{name:<8}{r['wall_s']:>10}{r['peak_rss_mb']:>14}")
    print("target: basic peak RSS <= 8192 MB;", "PASS" if results["basic"]["peak_rss_mb"] <= 8192 else "FAIL")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
