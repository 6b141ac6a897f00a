"""Files per minute of `audiosr-verify evaluate` against the number of workers, for both engines.

    python benchmarks/bench_evaluate.py                      # 12 files, workers 1 and 2, local and ray
    python benchmarks/bench_evaluate.py --files 24 --workers 1 2 4 --steps 2 --json bench.json

The corpus is the acceptance tests' synthetic one (tests/test_evaluate_engines.py:
tones plus noise at 16, 22.05, 44.1 and 48 kHz, 0.3 to 0.85 s), run through the
reference subject on the bundled tiny random weights. Each configuration starts
from an empty output directory; the wall time includes starting the workers
(processes or Ray) and loading one model per worker, as a user sees it. The
per-file rows of every configuration are also checked to be identical
(timings aside): more workers must not change a result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/ for the corpus maker


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=12)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--json", metavar="FILE", help="also write the measurements here")
    args = ap.parse_args()

    from audiosr_verify.checks.corpus import EvaluationSettings
    from audiosr_verify.corpus.journal import read_rows
    from audiosr_verify.corpus.ray_engine import ray_available
    from audiosr_verify.corpus.run import evaluate_corpus
    from tests.test_evaluate_engines import comparable, make_corpus

    settings = EvaluationSettings(subject="reference", mode="input", preset="tiny", steps=args.steps)
    results = []
    reference_rows = None
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
        corpus = make_corpus(Path(tmp) / "corpus", args.files)
        for engine in args.engines:
            if engine == "ray" and not ray_available():
                print("ray: not installed, skipped (pip install 'audiosr-verify[ray]')")
                continue
            for workers in args.workers:
                out = Path(tmp) / f"{engine}-{workers}"
                t0 = time.perf_counter()
                run = evaluate_corpus(corpus, settings, out, engine=engine, workers=workers, html=False)
                wall = time.perf_counter() - t0
                rows = read_rows(out / "results.jsonl")
                compute = sum(r["timing"]["total_s"] for r in rows)
                same = True
                if reference_rows is None:
                    reference_rows = comparable(rows)
                else:
                    same = comparable(rows) == reference_rows
                results.append({"engine": engine, "workers": workers, "files": run.evaluated, "wall_s": wall,
                                "files_per_minute": 60 * run.evaluated / wall,
                                "mean_file_s": compute / len(rows), "rows_identical": same})
                r = results[-1]
                print(f"{engine:5} workers {workers}: {r['files']} files in {wall:6.1f} s = "
                      f"{r['files_per_minute']:5.1f} files/min (mean {r['mean_file_s']:.2f} s per file in a worker; "
                      f"rows identical to the first configuration: {same})", flush=True)
    for engine in args.engines:
        base = next((r for r in results if r["engine"] == engine and r["workers"] == min(args.workers)), None)
        for r in results:
            if base and r["engine"] == engine and r is not base:
                print(f"{engine}: {r['workers']} workers vs {base['workers']}: "
                      f"{r['files_per_minute'] / base['files_per_minute']:.2f}x")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} at the end, {args.steps} DDIM step(s), tiny preset")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpus": os.cpu_count(), "load_average": load, "steps": args.steps,
                                               "results": results}, indent=2) + "\n")
    return 0 if all(r["rows_identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
