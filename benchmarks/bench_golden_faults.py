"""Benchmark: which porting faults the goldens see, and which only the stage checks see (and why).

Every fault of the catalogue (`audiosr_verify.subjects.faults.FAULTS`) is run the way
``audiosr-verify golden check --subject fault:NAME`` runs it: our product (every case's
``enhance`` options) with the fault in force, compared with the committed goldens
(random-tiny-seed0). Cases run cheapest first and a fault stops at its first failing case
(``--all-cases``: every case); fast paths are left out (their goldens are their owners').

Beside each verdict: how far the fault moved the output at all, max |faulty - clean| / peak
over the cases run, against the clean product computed here the same way (the same weights,
threads and process: 0 means bitwise unchanged), and the stage of the schema that catches it
first (declared in the catalogue, asserted by tests/test_injected_faults.py). A fault the
goldens do not see is either bitwise unchanged on every case, or moved it no more than float
noise does (``--noise``: the JSON of benchmarks/bench_golden_noise.py, the worst noise over the
cases the default tolerances judge, from which those tolerances were set; for a 16-bit output,
one rounding step); `WHY` says why for each. The run
fails (exit 1) when a fault moves some output by more than its float noise and no golden fails,
or when a fault the goldens miss has no reason in `WHY`.

    python benchmarks/bench_golden_noise.py --json noise.json
    python benchmarks/bench_golden_faults.py --noise noise.json [--faults ...] [--cases ...] [--all-cases] [--json FILE]
    python benchmarks/bench_golden_faults.py --noise noise.json --table FILE   # the table again, from --json FILE
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audiosr_model.runtime.host import cpu_model  # noqa: E402
from audiosr_verify import golden as G  # noqa: E402
from audiosr_verify.subjects import faults as F  # noqa: E402

NOISE_PEAK_REL = 3.04e-5  # without --noise: the worst noise of the 14 first cases (docs/golden-verdicts.md)

# Why the goldens cannot see a fault (reviewed against the measurement; docs/golden-verdicts.md, "What the goldens see").
_EPS = ("a normalisation epsilon off by 10x (or more) against activations of about unit variance: the output "
        "moves less than float rounding moves it, so no golden may fail (they must pass rounding); the stage, "
        "compared at float32 rounding with its input teacher-forced, sees it")
WHY: dict[str, str] = {
    "schedule_float32": "the cosine schedule in float32 moves the DDIM coefficients by float32 rounding: the output "
                        "moves less than rounding noise does; the ddim_schedule stage, compared at float64 "
                        "rounding, sees it",
    "unet_groupnorm_eps": _EPS,
    "unet_layernorm_eps": _EPS,
    "vae_groupnorm_eps": _EPS,
}


def _subject(fault: F.Fault, checkpoint: str):
    from audiosr_verify.checks.subject_check import activate
    from audiosr_verify.subject import SubjectContext

    subject = F.FaultSubject(fault, SubjectContext(checkpoint, "tiny", "cpu"))
    activate(subject)
    return subject


def _outputs(subject, settings, store, cases, stop_at_failure: bool):
    """(golden results, {case: obtained}) of ``subject``'s product, cheapest case first."""
    produce = G.product_producer(subject, settings, store.inputs_dir)
    results, obtained = [], {}
    for case in cases:
        run = G.run_golden(produce, settings, store, [case], write_obtained=False)
        r = run.results[0]
        results.append(r)
        obtained[case.name] = r.obtained
        if stop_at_failure and not r.passed:
            break
    return results, obtained


def _peak_rel(a: np.ndarray, b: np.ndarray) -> float:
    if a is None or b is None or a.shape != b.shape:
        return float("inf")
    peak = float(np.max(np.abs(b)))
    diff = float(np.max(np.abs(a.astype(np.float64) - b)))
    return diff / peak if peak else (0.0 if diff == 0 else float("inf"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", nargs="*", help="fault names (default: the whole catalogue)")
    ap.add_argument("--cases", nargs="*", help="case names (default: every case with a golden of its own)")
    ap.add_argument("--all-cases", action="store_true", help="run every case, not only up to the first failure")
    ap.add_argument("--json", help="write every measured value here")
    ap.add_argument("--noise", help="bench_golden_noise.py --json output: each case's float noise")
    ap.add_argument("--table", metavar="FILE", help="print the table of an earlier --json FILE; run nothing")
    args = ap.parse_args(argv)
    noise = _case_noise(args.noise)
    if args.table:
        data = json.loads(Path(args.table).read_text())
        print(f"host: {data['host']} (from {args.table})")
        return _table(data["rows"], noise)

    from audiosr_verify.checks.subject_check import write_random_checkpoint

    store = G.GoldenStore()
    settings = G.RunSettings()
    cases = [c for c in G.select_cases(store.cases(), args.cases) if not c.golden]
    # cheapest first: the short cases, then by output length; the full window first (the most sensitive)
    cases.sort(key=lambda c: (not c.covers or "full_window" not in c.covers, "chunking" in c.covers, c.name))
    names = args.faults or sorted(F.FAULTS)
    rows = []
    print(f"host: {cpu_model()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{len(names)} faults, {len(cases)} cases", flush=True)
    with tempfile.TemporaryDirectory(prefix="audiosr-faults-") as tmp:
        checkpoint = str(write_random_checkpoint(tmp, "tiny", 0))
        t0 = time.perf_counter()
        clean = _subject(F.Fault("clean", "the reference, nothing changed", None), checkpoint)
        _, reference = _outputs(clean, settings, store, cases, stop_at_failure=False)
        print(f"clean product: {len(reference)} cases in {time.perf_counter() - t0:.0f} s", flush=True)
        for name in names:
            t0 = time.perf_counter()
            subject = _subject(F.FAULTS[name], checkpoint)
            results, obtained = _outputs(subject, settings, store, cases, stop_at_failure=not args.all_cases)
            moved = {c: _peak_rel(o, reference[c]) for c, o in obtained.items()}
            failed = [r.case for r in results if not r.passed]
            rows.append({"fault": name, "stage": F.FAULTS[name].stage, "failed": failed, "cases_run": len(results),
                         "moved": moved, "seconds": round(time.perf_counter() - t0, 1)})
            print(f"  {name}: {'caught by ' + ', '.join(failed) if failed else 'not caught'}; "
                  f"moved {max(moved.values()):.3g} ({rows[-1]['seconds']} s)", flush=True)

    if args.json:
        Path(args.json).write_text(json.dumps({"host": cpu_model(), "rows": rows}, indent=2, default=float) + "\n")
    return _table(rows, noise)


def _case_noise(path: str | None) -> dict[str, float]:
    """case -> the peak-relative change float noise makes (bench_golden_noise.py --json): the worst over the cases
    the default tolerances judge, and for a 16-bit output at least one rounding step (2**-15) of its peak."""
    if not path:
        return {}
    from audiosr_model.audio_options import OUTPUT_FORMATS

    worst = float(json.loads(Path(path).read_text())["summary"]["noise"]["peak_relative_diff"]["worst_noise"])
    store, settings = G.GoldenStore(), G.RunSettings()
    noise = {}
    for case in store.cases():
        noise[case.name] = worst
        if OUTPUT_FORMATS[settings.for_case(case).out_format][1] == "PCM_16":
            peak = float(np.max(np.abs(store.load(settings.key, case.golden_name).waveform)))
            noise[case.name] = max(worst, 2.0**-15 / peak)
    return noise


def _table(rows: list[dict], noise: dict[str, float]) -> int:
    print("\n| fault | stage check catches it at | golden check | first failing case | max change / peak "
          "(cases run) | largest change / float noise | why the goldens miss it |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for row in rows:
        worst = max(row["moved"].values())
        ratios = {c: m / noise.get(c, NOISE_PEAK_REL) for c, m in row["moved"].items()}
        beyond = [c for c, r in ratios.items() if r > 1]
        verdict = "FAILS" if row["failed"] else "passes"
        why = "" if row["failed"] else WHY.get(row["fault"], "UNEXPLAINED")
        if not row["failed"] and (beyond or row["fault"] not in WHY):
            ok = False
            why += f" (beyond float noise on {', '.join(beyond)}, and no golden sees it)" if beyond else ""
        stage = row["stage"] or "none (the product's code)"
        moved = "0 (bitwise)" if worst == 0 else f"{worst:.2g}"
        ratio = f"{max(ratios.values()):.2g}x"
        if worst == float("inf"):  # no output to measure: the product raised (an error fails the golden check)
            moved, ratio = "- (the product raises)", "-"
        print(f"| `{row['fault']}` | {stage} | {verdict} | {row['failed'][0] if row['failed'] else '-'} | "
              f"{moved} ({row['cases_run']}) | {ratio} | {why} |")
    seen = sum(bool(r["failed"]) for r in rows)
    print(f"\nthe goldens see {seen} of {len(rows)} faults; the stage checks see "
          f"{sum(r['stage'] is not None for r in rows)}; only the goldens: "
          f"{', '.join(r['fault'] for r in rows if r['failed'] and r['stage'] is None) or 'none'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
