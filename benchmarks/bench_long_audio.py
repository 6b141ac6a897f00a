"""Benchmark: peak memory of `audiosr-verify enhance` does not grow with duration.

Writes 44.1 kHz mono 16-bit WAVs of several durations (default 20 s, 1 min and
10 min: a slow chirp plus noise, so every chunk has content and runs the
model), then enhances each through the CLI on the tiny preset with random
weights and 1 DDIM step, every run in its own subprocess. Measured per run:

  wall s       wall-clock time of the CLI process
  peak RSS MB  ru_maxrss of that one child (wait4), i.e. the CLI's high-water mark
  RSS after load / late  resident set sampled from /proc: median over the first
               and the last quarter of the run (flat = no growth while chunks stream)
  chunks       15 s chunks with 2 s overlap (model/long_audio.py)

Peak RSS should be the same for every duration (the input is read chunk by
chunk and the output written as it is produced).

    PYTHONPATH=. python benchmarks/bench_long_audio.py [--durations 20 60 600]
        [--steps 1] [--json FILE] [--workdir DIR] [--keep] [--mmap-threshold 1048576]

Measured on the 2-core machine (tiny, 1 step), default glibc malloc: peak RSS
958 / 1041 / 1194 MB for 20 s / 60 s / 600 s (2 / 5 / 46 chunks) while the
steady-state RSS stayed at 0.6-0.8 GB: the peak creeps up with the number
of chunks because glibc raises its mmap threshold after the first large
free and then serves the model's big temporaries from a fragmenting heap.
With ``--mmap-threshold 1048576`` the peak is flat: 838 / 837 MB for
20 s / 60 s, and 829 / 846 MB for 20 s / 600 s in another run, but the UNet
then mmaps every activation afresh (+66 % per step on the full preset).
``enhance`` therefore no longer pins the threshold: it raises it to 1 GiB
inside each network stage (activations reuse warm heap pages) and calls
``malloc_trim(0)`` when a stage ends and between chunks (``model/runtime/memory.py``; ``AUDIOSR_MALLOC=reuse|trim|off``
selects the behaviour to measure). Its figures: docs/performance.md, "Speed at verified
parity".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
RATE = 44100


def write_input(path: Path, seconds: float, seed: int = 0) -> None:
    """A chirp 100 Hz -> 10 kHz plus noise at about -20 dBFS, written block by block."""
    rng = np.random.default_rng(seed)
    total = int(round(seconds * RATE))
    block = RATE * 10
    f0, f1 = 100.0, 10000.0
    k = math.log(f1 / f0) / max(seconds, 1e-9)
    with sf.SoundFile(str(path), "w", samplerate=RATE, channels=1, subtype="PCM_16", format="WAV") as f:
        for start in range(0, total, block):
            t = (np.arange(start, min(total, start + block)) / RATE).astype(np.float64)
            phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k
            x = 0.1 * np.sin(phase) + 0.02 * rng.standard_normal(t.shape)
            f.write(x.astype(np.float32))


def chunk_count(seconds: float, chunk: float = 15.0, overlap: float = 2.0) -> int:
    total = round(seconds * 48000)
    c, o = round(chunk * 48000), round(overlap * 48000)
    return 1 if total <= c else math.ceil((total - o) / (c - o))


def _sample_rss(pid: int, samples: list, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        samples.append((time.perf_counter(), int(line.split()[1]) / 1024))
        except OSError:
            return


def run_cli(inp: Path, out_dir: Path, steps: int, extra_env: dict | None = None) -> dict:
    cmd = [sys.executable, "-m", "audiosr_verify.cli.main", "enhance", str(inp), "--output-dir", str(out_dir),
           "--random-weights", "--preset", "tiny", "--steps", str(steps), "--overwrite"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(extra_env or {}))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(proc.pid, samples, stop), daemon=True)
    sampler.start()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"CLI failed on {inp} (exit {code}):\n{stderr}")
    rss = [mb for _, mb in samples]
    q = max(1, len(rss) // 4)
    return {
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # Linux: kilobytes
        "rss_early_mb": statistics.median(rss[q : 2 * q]) if len(rss) >= 4 else None,
        "rss_late_mb": statistics.median(rss[-q:]) if len(rss) >= 4 else None,
        "rss_samples": len(rss),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--durations", type=float, nargs="+", default=[20.0, 60.0, 600.0], help="seconds")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--workdir", metavar="DIR", help="where to put the audio (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--mmap-threshold", type=int, metavar="BYTES",
                    help="run the CLI with MALLOC_MMAP_THRESHOLD_=BYTES (glibc: allocations above it are "
                    "mmapped and returned to the OS on free; fixes the threshold instead of letting it grow)")
    args = ap.parse_args(argv)
    extra_env = {"MALLOC_MMAP_THRESHOLD_": str(args.mmap_threshold)} if args.mmap_threshold else {}

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_long_audio."))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for seconds in args.durations:
            inp = work / f"in_{seconds:g}s.wav"
            write_input(inp, seconds)
            r = run_cli(inp, work / "out", args.steps, extra_env)
            out = work / "out" / f"{inp.stem}.wav"
            info = sf.info(str(out))
            expected = round(round(seconds * RATE) * 48000 / RATE)
            if info.frames != expected or info.samplerate != 48000:
                raise SystemExit(f"{out}: {info.frames} frames at {info.samplerate} Hz, expected {expected} at 48000")
            r.update(seconds=seconds, chunks=chunk_count(seconds), input_mb=inp.stat().st_size / 2**20,
                     output_mb=out.stat().st_size / 2**20)
            r["s_per_chunk"] = r["wall_s"] / r["chunks"]
            rows.append(r)
            print(f"  {seconds:g} s: {r['wall_s']:.0f} s wall, peak RSS {r['peak_rss_mb']:.0f} MB", file=sys.stderr)
            if args.json:  # after every run, so a long run that is stopped still leaves the shorter ones
                _write_json(args.json, rows, args.steps, extra_env)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    _print_table(rows, args.steps)
    return 0


def _write_json(path: str, rows: list[dict], steps: int, extra_env: dict) -> None:
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "steps": steps,
            "preset": "tiny", "input_rate": RATE, "load_avg": os.getloadavg(), "env": extra_env}
    Path(path).write_text(json.dumps({"meta": meta, "runs": rows}, indent=2) + "\n")


def _print_table(rows: list[dict], steps: int) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain fallback
        for r in rows:
            print(r)
        return
    t = Table(title=f"enhance, tiny preset, {steps} DDIM step(s), 44.1 kHz mono input")
    for col in ("audio s", "chunks", "wall s", "s/chunk", "peak RSS MB", "RSS early MB", "RSS late MB", "in MB", "out MB"):
        t.add_column(col, justify="right")
    fmt = lambda v: "-" if v is None else f"{v:.0f}"
    for r in rows:
        t.add_row(f"{r['seconds']:g}", str(r["chunks"]), f"{r['wall_s']:.0f}", f"{r['s_per_chunk']:.1f}",
                  f"{r['peak_rss_mb']:.0f}", fmt(r["rss_early_mb"]), fmt(r["rss_late_mb"]),
                  f"{r['input_mb']:.1f}", f"{r['output_mb']:.1f}")
    Console(width=max(120, shutil.get_terminal_size().columns)).print(t)


if __name__ == "__main__":
    sys.exit(main())
