"""Benchmark: the reduced-precision subjects in metric terms, and where their tolerances come from.

For each subject, `audiosr_verify.checks.metric_verdict.check_precision` measures
the peak-relative error of every network stage (teacher-forced on the `full`
fixture input) and, on every fixture input with the original's output
stored, LSD below and above the cutoff, SI-SDR and the level difference of
`enhance` against the original. Subjects:

  noise    ``reference`` (float32) and ``precision:bf16`` (and ``precision:fp16``
           with ``--fp16``: on a CPU without float16 kernels that takes many minutes);
  changes  porting faults of the catalogue (float32), measured with the same metrics:
           what a bound must still catch.

It prints one table per subject and the summary against `checks.metric_verdict.BOUNDS`.

    python benchmarks/bench_precision.py [--fp16] [--faults a b ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audiosr_verify.checks.metric_verdict import BOUNDS, check_precision  # noqa: E402

FAULTS = ("unet_groupnorm_eps", "vae_groupnorm_eps", "unconditional_constant", "guidance_formula",
          "leaky_relu_slope", "energy_ratio_unclamped")


def _f(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp16", action="store_true", help="also measure precision:fp16")
    ap.add_argument("--faults", nargs="*", default=list(FAULTS))
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    subjects = [("reference", "fp32"), ("precision:bf16", "bf16")]
    if args.fp16:  # held to its own bounds once they are measured, to bf16's until then
        subjects.append(("precision:fp16", "fp16" if "fp16" in BOUNDS else "bf16"))
    subjects += [(f"fault:{f}", "bf16") for f in args.faults]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    results = {}
    for spec, precision in subjects:
        r = check_precision(spec, precision)
        results[spec] = r.to_dict()
        print(f"\n{r.summary_line()} ({r.seconds:.0f} s)")
        print("| stage | peak-relative error | max abs |\n|---|---|---|")
        for s in r.stages:
            print(f"| {s.stage} | {_f(s.peak_rel)} | {_f(s.max_abs)} |")
        print("| input | LSD below cutoff | LSD above cutoff | SI-SDR (dB) | level (dB) |\n|---|---|---|---|---|")
        for o in r.outputs:
            print(f"| {o.input} | {_f(o.lsd_low)} | {_f(o.lsd_high)} | {_f(o.si_sdr_db)} | {o.level_db:+.3g} |")
    reduced = [p for p in BOUNDS if p != "fp32"]
    print("\n| metric | " + " | ".join(f"{p} bound" for p in reduced) + " | " +
          " | ".join(spec for spec, _ in subjects) + " |")
    print("|---|" + "---|" * (len(reduced) + len(subjects)))
    worst = {
        "stage peak-relative error (max over stages)": lambda d: max(s["peak_rel"] for s in d["stages"]),
        "LSD below cutoff (max)": lambda d: max(o["lsd_low"] for o in d["outputs"]),
        "LSD above cutoff (max)": lambda d: max(o["lsd_high"] for o in d["outputs"]),
        "SI-SDR dB (min)": lambda d: min(o["si_sdr_db"] for o in d["outputs"]),
        "level dB (max abs)": lambda d: max(abs(o["level_db"]) for o in d["outputs"]),
    }
    attrs = ("stage_peak_rel", "lsd_low", "lsd_high", "si_sdr_db", "level_db")
    for (label, fn), attr in zip(worst.items(), attrs):
        bounds = " | ".join(f"{getattr(BOUNDS[p], attr):g}" for p in reduced)
        print(f"| {label} | {bounds} | " + " | ".join(_f(fn(results[s])) for s, _ in subjects) + " |")
    print("\nverdicts: " + "; ".join(f"{s}: {'pass' if results[s]['ok'] else 'fail'}" for s, _ in subjects))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
