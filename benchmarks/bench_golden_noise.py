"""Benchmark: how far float-rounding noise and real changes land from the golden tolerances.

For every golden case of the bundled store (tiny preset, random weights seed 0;
several channels compared one by one, each case with its own enhance options),
each metric that decides a golden verdict (`golden.DEFAULT_TOLERANCES`, and a fast
path's own bounds) is measured on

  noise    the output recomputed with 1 and with 2 torch threads (another
           reduction order, as another CPU vendor or BLAS kernel gives), and the
           committed golden perturbed by relative noise of 1e-6 and by +-1 ulp;
  changes  0.5 dB of gain, a 1 ms shift, the band above the cutoff removed, one
           click at -40 dBFS (`audiosr_verify.golden.perturbations`), and the vocoder's
           final tanh replaced by a hard clip (the model re-run).

It prints, per metric, the worst value over all noise rows, the tolerance, the
least-caught value over the change rows, and the margins either side; then the
same per case (the table of every case's margins in docs/golden-verdicts.md). The fast paths
(bf16, SDPA, batched chunks) are recomputed too and judged against the golden of
the case they name, under their measured bounds. A bound is
well placed when noise stays many times inside it and every change lands outside
it (a change need only be caught by one metric; the table says which catch it).

    python benchmarks/bench_golden_noise.py [--cases a b ...] [--json FILE]

``--spread`` measures instead how far the noise that ``golden update`` measures for a checkpoint of one's own
(`audiosr_verify.golden.noise`: recomputed with another thread count and oneDNN off; 1e-6 relative; +-1 ulp)
falls short of the noise of other CPUs, simulated on this one in subprocesses (ATEN_CPU_CAPABILITY,
ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS at AVX2, and at SSE4 without vector kernels): the ratio must stay
below `noise.FACTOR`, the multiple of the measured noise a derived bound allows (notes/golden-bounds.md):

    python benchmarks/bench_golden_noise.py --spread [--checkpoint CKPT --preset tiny] [--steps 50] \
        [--cases full_window_16k noise_burst_16k speech_lp4k chord_lp8k]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audiosr_model.runtime.host import cpu_model  # noqa: E402
from audiosr_verify import golden as G  # noqa: E402
from audiosr_verify.golden.perturbations import CHANGES, NOISE  # noqa: E402


class _HardClipTorch:
    """`torch` for audiosr_model.nets.vocoder, except that ``tanh`` is a hard clip (the changed-vocoder test)."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def tanh(x):
        return torch.clamp(x, -1.0, 1.0)


def _enhance_all(net, cases, settings, store, threads: int) -> dict[str, np.ndarray]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory() as work:
            return {c.name: G.enhance_case(net, c, settings, store.inputs_dir, work) for c in cases}
    finally:
        torch.set_num_threads(before)




# other CPUs, simulated on this one (each in its own process: the variables are read when torch loads)
OTHER_CPUS = {
    "AVX2 CPU": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "SSE4 CPU, no vector kernels": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                                    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}


def _spread_model(args):
    from dataclasses import replace

    from audiosr_model.weights.load import load_model, random_model

    if args.checkpoint:
        net, _ = load_model(args.checkpoint, args.preset)
        settings = G.RunSettings.for_checkpoint(args.checkpoint, preset=args.preset)
    else:
        net, settings = random_model("tiny", 0), G.RunSettings()
    return net, (replace(settings, steps=args.steps) if args.steps else settings)


def _spread_cases(store, args):
    from dataclasses import replace

    cases = [c for c in G.select_cases(store.cases(), args.cases or ["full_window_16k", "noise_burst_16k",
                                                                      "speech_lp4k", "chord_lp8k"]) if not c.golden]
    if args.steps:  # every case at the asked number of steps
        cases = [replace(c, options={k: v for k, v in c.options.items() if k != "steps"}) for c in cases]
    return cases


def _produce(args) -> int:
    """(In a subprocess) every case's output with the environment's CPU kernels, saved under --produce DIR."""
    out = Path(args.produce)
    out.mkdir(parents=True, exist_ok=True)
    net, settings = _spread_model(args)
    store = G.GoldenStore()
    for case, x in _enhance_all(net, _spread_cases(store, args), settings, store, torch.get_num_threads()).items():
        np.save(out / f"{case}.npy", x)
    return 0


def spread(args) -> int:
    """The noise `golden update` measures against the noise of other (simulated) CPUs, per case and metric."""
    import os
    import subprocess

    from audiosr_model.runtime.host import cpu_model
    from audiosr_verify.golden import noise as N
    from audiosr_verify.golden.policy import compare_outputs

    store = G.GoldenStore()
    net, settings = _spread_model(args)
    cases = _spread_cases(store, args)
    threads = torch.get_num_threads()
    golden = _enhance_all(net, cases, settings, store, threads)
    measured = {c.name: N.measure(store, c, golden[c.name], settings,
                                  lambda t, c=c: _enhance_all(net, [c], settings, store, t)[c.name], threads)
                for c in cases}
    model = (["--checkpoint", args.checkpoint, "--preset", args.preset] if args.checkpoint else [])
    model += (["--steps", str(args.steps)] if args.steps else []) + ["--cases", *[c.name for c in cases]]
    others: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as work:
        for name, env in OTHER_CPUS.items():
            d = Path(work) / str(len(others))
            subprocess.run([sys.executable, __file__, "--produce", str(d), *model], check=True,
                           env={**os.environ, **env})
            others[name] = {c.name: np.load(d / f"{c.name}.npy") for c in cases}
    metrics = [m for m in G.DEFAULT_TOLERANCES if m != "new_line_artifact"]
    print(f"host: {cpu_model()}, torch {torch.__version__}, {threads} threads; {settings.describe()}")
    print("\nPer case: the noise `golden update` measures (worst of its three rows) and that of other CPUs; the "
          "ratio is other CPUs' worst over the measured worst (SI-SDR: in amplitude, 10^(dB/20)).")
    print("\n| case | row | " + " | ".join(metrics) + " |")
    print("|---|---|" + "---|" * len(metrics))
    worst_ratio = 0.0
    for c in cases:
        m = measured[c.name]
        rows = dict(m.noise)
        g = G.store._frames(golden[c.name])
        for name, out in others.items():
            o = G.store._frames(out[c.name])
            checks = compare_outputs(g, o, m.defaults, c.cutoff_hz, store._references(c, o))
            rows[name] = {r.name: r.value for r in checks}
        for name, v in rows.items():
            print(f"| {c.name} | {name} | " + " | ".join(f"{v[k]:.3g}" for k in metrics) + " |")
        ratios = []
        for k in metrics:
            other = [rows[n][k] for n in others]
            if "min" in G.DEFAULT_TOLERANCES[k]:
                ratios.append(10 ** ((m.worst[k] - min(other)) / 20))
            else:
                ratios.append(max(other) / m.worst[k] if m.worst[k] else float("inf"))
        worst_ratio = max(worst_ratio, *ratios)
        print(f"| {c.name} | **other CPUs / measured** | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")
    print(f"\nworst ratio {worst_ratio:.2f}; a derived bound allows {N.FACTOR:g}x the measured noise: "
          + ("covered" if worst_ratio < N.FACTOR else "NOT covered"))
    return 0 if worst_ratio < N.FACTOR else 1


def _values(res) -> dict:
    return {c.name: c.value for c in res.checks if c.bound is not None and c.name != "new_line_artifact"}


def _margin(metric: str, bound: dict, value) -> str:
    if value is None:
        return "-"
    if "max" in bound:
        return f"{value:.2g} ({bound['max'] / value:.0f}x)" if value else "0"
    return f"{value:.3g} (+{value - bound['min']:.1f} dB)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", help="case names (default: all with a committed golden)")
    ap.add_argument("--json", help="write every measured value here")
    ap.add_argument("--spread", action="store_true",
                    help="measured noise of a checkpoint of one's own against other (simulated) CPUs' noise")
    ap.add_argument("--checkpoint", help="with --spread: this checkpoint (default: the bundled random tiny weights)")
    ap.add_argument("--preset", default="basic", help="with --checkpoint: its layout (default basic)")
    ap.add_argument("--steps", type=int, help="with --spread: DDIM steps of every case (default: the goldens')")
    ap.add_argument("--produce", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.produce:
        return _produce(args)
    if args.spread:
        return spread(args)

    import audiosr_model.nets.vocoder
    from audiosr_model.weights.load import random_model

    store = G.GoldenStore()
    settings = G.RunSettings()
    net = random_model(settings.preset, settings.weights_seed)
    cases = [c for c in G.select_cases(store.cases(), args.cases)
             if store.exists(settings.key, c.golden_name) and G.not_applicable(c, net) is None]
    own = [c for c in cases if not c.golden]  # fast paths: judged against their owner's golden, by their bounds
    recomputed = {f"recomputed, {t} thread(s)": _enhance_all(net, cases, settings, store, t) for t in (1, 2)}
    saved = audiosr_model.nets.vocoder.torch
    audiosr_model.nets.vocoder.torch = _HardClipTorch()
    try:
        clipped = _enhance_all(net, own, settings, store, torch.get_num_threads())
    finally:
        audiosr_model.nets.vocoder.torch = saved

    def compare(case, obtained):
        return store.compare(case, obtained, settings, write_obtained=False)

    rows = []  # (family, perturbation, case, {metric: value}, [failed metrics])
    for case in cases:
        variants = [("noise", name, out[case.name]) for name, out in recomputed.items()]
        if not case.golden:
            golden = store.load(settings.key, case.name).frames
            variants += [("noise", name, f(golden, case.cutoff_hz)) for name, f in NOISE.items()]
            variants += [("change", name, f(golden, case.cutoff_hz)) for name, f in CHANGES.items()]
            variants.append(("change", "vocoder tanh -> hard clip", clipped[case.name]))
        for family, name, obtained in variants:
            res = compare(case, obtained)
            rows.append((family, name, case.name, _values(res), sorted(c.name for c in res.failed_checks())))

    tol = G.DEFAULT_TOLERANCES
    metrics = [m for m in tol if m != "new_line_artifact"]
    # the aggregate tables: the cases judged by the default tolerances (float or 24-bit outputs of their own);
    # a 16-bit output's and a fast path's bounds are their own, in the per-case table
    own_names = {c.name for c in own if G.case_tolerances(c) is None}

    def worse(metric, a, b):  # the value nearer to failing
        if a is None:
            return b
        if b is None:
            return a
        return min(a, b) if "min" in tol[metric] else max(a, b)

    def better(metric, a, b):
        if a is None:
            return b
        if b is None:
            return a
        return max(a, b) if "min" in tol[metric] else min(a, b)

    print(f"host: {cpu_model()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{len(cases)} cases ({len(cases) - len(own)} fast paths)")
    print(f"\nNoise: the worst value over the {len(own_names)} cases judged by the default tolerances and every "
          "noise row, and how far inside the tolerance it is.")
    print("\n| metric | tolerance | worst noise | margin |")
    print("|---|---|---|---|")
    summary: dict[str, dict] = {"noise": {}, "changes": {}}
    for m in metrics:
        noise = None
        for family, _, case, values, _ in rows:
            if family == "noise" and case in own_names and values.get(m) is not None:
                noise = worse(m, noise, values[m])
        bound = tol[m].get("max", tol[m].get("min"))
        upper = "max" in tol[m]
        margin = (f"{bound / noise:.3g}x" if noise else "inf") if upper else f"{noise - bound:.3g} dB"
        print(f"| {m} | {'<=' if upper else '>='} {bound:g} | {noise:.3g} | {margin} |")
        summary["noise"][m] = {"tolerance": tol[m], "worst_noise": noise}

    print("\nChanges: per metric, the least-changed value over those cases; ** = beyond the tolerance in every case.")
    print("\n| change | cases caught | " + " | ".join(metrics) + " |")
    print("|---|---|" + "---|" * len(metrics))
    ok = True
    for name in list(CHANGES) + ["vocoder tanh -> hard clip"]:
        sel = [r for r in rows if r[1] == name and r[2] in own_names]
        n_caught = sum(bool(r[4]) for r in sel)
        ok &= n_caught == len(sel)
        cells = []
        for m in metrics:
            least = None
            for r in sel:
                if r[3].get(m) is not None:
                    least = better(m, least, r[3][m])
            if least is None:
                cells.append("-")
                continue
            beyond = least > tol[m]["max"] if "max" in tol[m] else least < tol[m]["min"]
            cells.append(f"**{least:.3g}**" if beyond else f"{least:.3g}")
            summary["changes"].setdefault(name, {})[m] = least
        print(f"| {name} | {n_caught}/{len(sel)} | " + " | ".join(cells) + " |")

    print("\nPer case: the worst float noise of each checked metric (1 and 2 threads; 1e-6 relative and +-1 ulp "
          "on a golden of its own) and, in brackets, its margin to the case's tolerance; then how many of the "
          "real changes it catches. A fast path is judged against its owner's golden by its own bounds.")
    shown = ["peak_relative_diff", "spectral_distance", "spectral_distance_worst_frame", "spectral_distance_hf",
             "si_sdr", "lsd_lf", "lsd_hf", "level_difference_db"]
    print("\n| case | " + " | ".join(shown) + " | changes caught |")
    print("|---|" + "---|" * (len(shown) + 1))
    per_case = {}
    for case in cases:
        case_tol = store.tolerances(settings.key, case.name, case_layer=G.case_tolerances(case))
        worst: dict[str, float | None] = {}
        for family, _, name, values, _ in rows:
            if family == "noise" and name == case.name:
                for m, v in values.items():
                    if v is None:
                        continue
                    w = worst.get(m)
                    worst[m] = v if w is None else (min(w, v) if "min" in case_tol[m] else max(w, v))
        changes = [r for r in rows if r[0] == "change" and r[2] == case.name]
        ok &= all(bool(r[4]) for r in changes)
        caught = f"{sum(bool(r[4]) for r in changes)}/{len(changes)}" if changes else "-"
        cells = [_margin(m, case_tol[m], worst.get(m)) if m in case_tol else "-" for m in shown]
        print(f"| {case.name} | " + " | ".join(cells) + f" | {caught} |")
        per_case[case.name] = {"tolerances": case_tol, "worst_noise": worst}

    false_alarms = [(r[1], r[2], r[4]) for r in rows if r[0] == "noise" and r[4]]
    ok &= not false_alarms
    print(f"\nnoise rows failing a check: {false_alarms or 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"host": cpu_model(), "summary": summary, "per_case": per_case,
             "rows": [{"family": f, "perturbation": n, "case": c, "values": v, "caught_by": k}
                      for f, n, c, v, k in rows]}, indent=2, default=float) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
