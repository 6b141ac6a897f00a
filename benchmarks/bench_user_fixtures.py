"""Full-size fixtures from a checkpoint and audio (issue 22): time, size and peak memory of each step.

    python benchmarks/bench_user_fixtures.py --workdir /tmp/full [--preset basic] [--steps 50] [--faults] [--onnx]

Steps, each a CLI run in a child process (one at a time: the original at full size peaks near 12 GB):

1. ``make-checkpoint --preset P`` (seeded random weights in the original format; skipped when present);
2. two recordings of a few seconds (16 kHz mono speech-like, 44.1 kHz stereo; skipped when present);
3. ``oracle export --checkpoint --inputs --steps`` (the original's stages, its plain super_resolution on
   the first input in the same process, then the calibration against float64);
4. ``check reference --fixtures FIX --checkpoint``; with ``--faults``, ``oracle calibrate --stored --faults``
   (the fault catalogue under the bounds the export stored); with ``--onnx``, ``check`` of the ONNX Runtime
   example (examples/subjects/onnx_runtime.py, its networks exported at this size into WORKDIR/onnx).

Prints wall time and the peak RSS of each step's process tree (``RUSAGE_CHILDREN``), the fixture
size per input, and the check's verdict line. Needs the oracle venv (``audiosr-verify oracle setup``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def run(argv: list[str], log: Path) -> tuple[float, float, int]:
    """Seconds, peak RSS (MB) of the process tree, exit code of ``audiosr-verify ARGV``."""
    start = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "audiosr_verify", *argv], stdout=f, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    return seconds, peak, proc.returncode


def recordings(work: Path) -> list[Path]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    speech, music = work / "speech16k.wav", work / "music44k.wav"
    if not speech.exists():
        t = np.arange(int(6 * 16000)) / 16000
        sf.write(speech, 0.3 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t)
                 + 0.05 * rng.standard_normal(t.size), 16000)
    if not music.exists():
        t = np.arange(int(5.5 * 44100)) / 44100
        sf.write(music, np.stack([0.2 * np.sin(2 * np.pi * 1000 * t), 0.05 * np.sin(2 * np.pi * 3000 * t)], 1),
                 44100, subtype="PCM_16")
    return [speech, music]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--preset", default="basic", choices=["basic", "tiny"])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--faults", action="store_true", help="also run the fault catalogue at this size")
    p.add_argument("--onnx", action="store_true", help="also check the ONNX Runtime example at this size")
    a = p.parse_args()
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / f"{a.preset}.bin"
    rows = []
    if not ckpt.exists():
        rows.append(("make-checkpoint", *run(["make-checkpoint", "--preset", a.preset, "--output", str(ckpt)],
                                            work / "make.log")))
    inputs = recordings(work)
    fix = work / "FIX"
    if not fix.exists():
        rows.append(("oracle export + calibration", *run(
            ["oracle", "export", "--checkpoint", str(ckpt), "--preset", a.preset, "--inputs", *map(str, inputs),
             "--steps", str(a.steps), "-o", str(fix)], work / "export.log")))
    rows.append(("check reference", *run(["check", "reference", "--fixtures", str(fix), "--checkpoint", str(ckpt),
                                          "--json", str(work / "check.json")], work / "check.log")))
    if a.faults:
        rows.append(("oracle calibrate --faults", *run(
            ["oracle", "calibrate", str(fix), "--checkpoint", str(ckpt), "--stored", "--faults", "--json",
             str(work / "faults.json")], work / "faults.log")))
    if a.onnx:
        example = Path(__file__).resolve().parent.parent / "examples" / "subjects" / "onnx_runtime.py"
        rows.append(("check onnx_runtime example", *run(
            ["check", f"{example}:make_subject", "--fixtures", str(fix), "--checkpoint", str(ckpt),
             "--option", f"onnx_dir={work / 'onnx'}", "--json", str(work / "onnx.json")], work / "onnx.log")))
    print(f"{'step':32s} {'seconds':>8s} {'peak RSS MB (largest so far)':>30s} exit")
    for name, seconds, peak, rc in rows:
        print(f"{name:32s} {seconds:8.1f} {peak:30.0f} {rc}")
    for f in sorted(fix.glob("*.safetensors")):
        print(f"fixture {f.name}: {f.stat().st_size / 1e6:.1f} MB")
    print(f"whole set: {sum(x.stat().st_size for x in fix.rglob('*') if x.is_file()) / 1e6:.1f} MB")
    if (work / "check.json").exists():
        print(json.loads((work / "check.json").read_text())["summary"])
    return 0 if all(r[-1] == 0 for r in rows) else 1


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    sys.exit(main())
