"""`audiosr-verify report` and `audiosr-verify golden check|update`.

`add_verbs(sub)` registers both on the `audiosr-verify` sub-parser. Exit codes:
0 when everything checked passes, 1 when something fails, 2 (via the CLI's
main) on an `AudioSRError` such as a bad checkpoint or an unknown case.

Without ``--checkpoint`` both run the bundled default: the tiny preset with
random weights (``--weights-seed``, default 0).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from audiosr_model.errors import AudioSRError
from audiosr_verify.cli.common import EXIT_FAILED, EXIT_OK, add_model_options



def _store_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("golden store")
    g.add_argument("--golden-dir", metavar="DIR", help="golden store root (default golden/regression)")
    g.add_argument("--inputs-dir", metavar="DIR", help="regression inputs (default golden/regression_inputs)")
    g.add_argument("--case", action="append", default=[], metavar="NAME",
                   help="only this case (repeatable; default: every case in cases.json)")
    g.add_argument("--fast", action="store_true", help="only the cases of the fast test tier")
    g.add_argument("--subject", metavar="SUBJECT", default=None,
                   help="check (or update) the goldens of a subject's enhance (faithful level, channel 0) instead "
                   "of ours: reference, original, module:factory or file.py:factory; goldens live under "
                   "<weights>-faithful-first")


def add_verbs(sub) -> None:
    """Register `report` and `golden` on an argparse sub-parsers object."""
    p = sub.add_parser(
        "report", help="run every check and write report.json / report.md / report.html",
        description="Run state-dict parity, functional parity (when available), the golden regression "
        "and the property tests for the model in use, print a summary and write report.json, report.md "
        "and a self-contained report.html (spectrograms of every golden case). Exit 0 only when every "
        "section passes (sections not available yet count as passing unless --strict).")
    p.add_argument("--output-dir", "-o", default="reports", metavar="DIR", help="where to write (default reports/)")
    add_model_options(p)
    _store_options(p)
    p.add_argument("--no-properties", action="store_true", help="do not run the property tests")
    p.add_argument("--strict", action="store_true", help="sections that are not available fail the report")
    p.set_defaults(func=cmd_report)

    g = sub.add_parser("golden", help="check or update the golden regression outputs",
                       description="Enhance the regression inputs (seed 42, 2 DDIM steps, guidance 3.5, "
                       "preserve level) and compare with, or write, golden/regression/<checkpoint-key>/.")
    gsub = g.add_subparsers(dest="golden_command", metavar="ACTION")
    gsub.required = True
    p = gsub.add_parser("check", help="compare with the goldens (exit 1 on any failure)",
                        description="Compare every case with its golden; a failing case gets obtained.* and "
                        "comparison.json beside its golden. A missing golden fails.")
    add_model_options(p)
    _store_options(p)
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.set_defaults(func=cmd_golden, update=False)
    p = gsub.add_parser("update", help="write (replace) the goldens, atomically per case",
                        description="Write the golden of every selected case (temporary directory, then "
                        "rename). Review the result (audiosr-verify report) before committing it.")
    add_model_options(p)
    _store_options(p)
    p.set_defaults(func=cmd_golden, update=True, json=None)


def _network_and_settings(args, console):
    from audiosr_verify.cli.common import load_network
    from audiosr_verify.golden import RunSettings

    if not args.checkpoint:
        args.random_weights = True  # the bundled default
    with console.status("loading model"):
        net, described = load_network(args)
    name = net.config.name
    if args.checkpoint:
        with console.status("hashing checkpoint (sha256)"):
            settings = RunSettings.for_checkpoint(args.checkpoint, preset=name)
    else:
        settings = RunSettings(preset=name, weights_seed=args.weights_seed)
    return net, described, settings


@contextlib.contextmanager
def _golden_source(args, console, store):
    """(our network or a subject's outputs, a description, the run settings) for `golden`."""
    if not getattr(args, "subject", None):
        yield _network_and_settings(args, console)
        return
    from audiosr_verify.checks.subject_check import opened_subject
    from audiosr_verify.golden import RunSettings, subject_producer

    preset = args.preset or ("basic" if args.checkpoint else "tiny")
    if args.checkpoint:
        settings = RunSettings.for_checkpoint(args.checkpoint, preset=preset, level_mode="faithful", mix="first",
                                              subject=args.subject)
    else:
        settings = RunSettings.for_subjects(args.subject, preset=preset, weights_seed=args.weights_seed)
    console.print(f"loading subject {args.subject}", highlight=False)
    from audiosr_model.load import resolve_device

    device = str(resolve_device(args.device))
    with opened_subject(args.subject, args.checkpoint, preset, args.weights_seed, device) as subject:
        yield subject_producer(subject, settings, store.inputs_dir), f"subject {subject.name}", settings


def _store_and_cases(args):
    from audiosr_verify.golden import GoldenStore, select_cases

    store = GoldenStore(args.golden_dir, args.inputs_dir)
    cases = store.cases()
    if not cases:
        raise AudioSRError("no regression cases (run: python tools/regression_inputs.py)",
                           store.inputs_dir / "cases.json")
    cases = select_cases(cases, args.case)
    if args.fast:
        cases = [c for c in cases if c.tier == "fast"]
    return store, cases


def _case_progress(progress):
    task = progress.add_task("golden cases", total=1)

    def report(name: str, done: int, total: int) -> None:
        progress.update(task, description=f"golden {name}" if name else "golden cases", completed=done, total=total)

    return report


def _progress(console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def _out_console():
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=150)


def cmd_golden(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from audiosr_verify import golden as G

    err = Console(stderr=True)
    store, cases = _store_and_cases(args)
    with _golden_source(args, err, store) as (source, described, settings):
        err.print(f"model: {described}; golden key {settings.key}", highlight=False)
        with _progress(err) as progress:
            run = G.run_golden(source, settings, store, cases, update=args.update,
                               progress=_case_progress(progress))
    out = _out_console()
    table = Table(title=f"golden {'update' if args.update else 'check'}: {settings.key}", title_justify="left")
    columns = (("case", "status", "golden", "seconds") if args.update else
               ("case", "status", "max |diff| / peak", "spectral dist dB", "worst frame dB", "SI-SDR dB",
                "seconds"))
    for col in columns:
        table.add_column(col)
    for r in run.results:
        value = lambda name: next((c.value_text() for c in r.checks if c.name == name), "-")
        seconds = "-" if r.seconds is None else f"{r.seconds:.1f}"
        if args.update:
            row = (r.case, r.status, r.message, seconds)
        else:
            row = (r.case, r.status.replace("_", " "), value("peak_relative_diff"), value("spectral_distance"),
                   value("spectral_distance_worst_frame"), value("si_sdr"), seconds)
        table.add_row(*row, style=None if r.passed else "red")
    out.print(table)
    if not args.update:
        from audiosr_verify.report.render import case_table_text

        for r in run.results:
            if not r.passed:
                out.print(case_table_text(r, width=out.width), highlight=False, markup=False)
    if args.json:
        import json

        from audiosr_verify.util.atomic import atomic_write as write_atomic

        write_atomic(args.json, json.dumps(run.to_dict(), indent=2) + "\n")
    out.print(run.summary_line(), highlight=False)
    if args.update:
        out.print(f"wrote {len(run.results)} golden(s) under {store.root / settings.key}; review "
                  "(audiosr-verify report) and commit them", highlight=False)
    return EXIT_OK if run.passed else EXIT_FAILED


def cmd_report(args) -> int:
    from rich.console import Console

    from audiosr_verify.report import model as R
    from audiosr_verify.report.render import print_rich, write_all

    err = Console(stderr=True)
    out_dir = Path(args.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise AudioSRError("output path exists and is not a directory", out_dir)
    store, cases = _store_and_cases(args)
    t0 = time.perf_counter()
    with _golden_source(args, err, store) as (source, described, settings):
        with _progress(err) as progress:
            stage = progress.add_task("report", total=None)
            report = R.build_report(source, settings, store=store, cases=cases, properties=not args.no_properties,
                                    strict=args.strict, model_description=described,
                                    progress=lambda what: progress.update(stage, description=what),
                                    case_progress=_case_progress(progress), subject=args.subject or "reference")
    print_rich(report, _out_console())
    written = write_all(report, out_dir)
    err.print(f"wrote {', '.join(str(p) for p in written)} in {time.perf_counter() - t0:.0f} s", highlight=False,
              soft_wrap=True)
    return report.exit_code

