"""Benchmark: how far float noise and the fault catalogue land from the stage tolerances.

Runs `check reference` (teacher-forced view) with 1 and with 2 torch threads
(another reduction order, as another CPU or BLAS kernel gives) and every fault
subject of `audiosr_verify.subjects.faults`, then prints per fixture tensor:
the tolerance, the worst float noise of the reference and how far inside the
tolerance it is; and per fault: the stage and tensor that catch it first and
the error there (how far outside).

    python benchmarks/bench_stage_margins.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audiosr_model.runtime.host import cpu_model  # noqa: E402
from audiosr_verify import schema  # noqa: E402
from audiosr_verify.checks.subject_check import run_check  # noqa: E402
from audiosr_verify.subjects.faults import FAULTS  # noqa: E402




def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the measured values here")
    args = ap.parse_args(argv)

    noise: dict[str, float] = {}
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        result = run_check("reference", views=("teacher",), modules=False)
        assert result.ok, result.summary_line()
        for c in result.stages.comparisons:
            key = schema._pattern(c.name) if not c.name.startswith("lowpass.") else "lowpass.*"
            noise[key] = max(noise.get(key, 0.0), c.max_abs)
    torch.set_num_threads(before)

    print(f"host: {cpu_model()}, torch {torch.__version__}")
    print("\n| fixture tensor | tolerance (atol + rtol·|ref|) | worst noise (1 and 2 threads) | atol / noise |")
    print("|---|---|---|---|")
    for key in sorted(noise, key=lambda k: schema.rank(k.replace("*", "0").replace("lowpass.0", "lowpass.ellip"))):
        try:
            t = schema.tolerance(key.replace("step*", "step0").replace(".t*", ".t1").replace("lowpass.*", "lowpass.ellip"))
        except KeyError:
            continue
        margin = "exact" if t.exact else (f"{t.atol / noise[key]:.3g}x" if noise[key] and t.atol else "-")
        print(f"| {key} | {t.atol:g} + {t.rtol:g} | {noise[key]:.3g} | {margin} |")

    print("\n| fault | expected stage | caught first at | module | tensor | error there | tolerance |")
    print("|---|---|---|---|---|---|---|")
    faults = {}
    ok = True
    for name, fault in sorted(FAULTS.items()):
        if fault.stage is None:  # the product's code (channels, silence, preserve level): bench_golden_faults.py
            continue
        result = run_check(f"fault:{name}", inputs=["tone_mix_16k"], views=("teacher",), stop_at_first_failure=True)
        first = result.first_divergence() or {}
        row = next((c for c in result.stages.comparisons if not c.passed), None)
        tol = row.tolerance_text() if row else "-"
        err = f"{row.max_abs:.3g}" if row else "-"
        ok &= first.get("stage") == fault.stage and first.get("module") == fault.module
        module = first.get("module") or "-"
        print(f"| {name} | {fault.stage} | {first.get('stage')} | {module} | {first.get('fixture')} | {err} | {tol} |")
        faults[name] = {"expected": fault.stage, "caught": first.get("stage"), "module": first.get("module"),
                        "fixture": first.get("fixture"), "max_abs": row.max_abs if row else None}
    if args.json:
        Path(args.json).write_text(json.dumps({"host": cpu_model(), "noise": noise, "faults": faults}, indent=2,
                                              default=str) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
