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
from audiosr_verify.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_model_options,
    check_model_options,
    check_output_dir,
    input_dir,
    output_dir,
    remove_if_empty,
)



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
                   "<weights>-faithful-first, and cases that need the product's options are not applicable. "
                   "fault:NAME (our product with one fault) runs the product with every case's options against "
                   "our own goldens (check only)")


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
                       "preserve level, then each case's own enhance options from cases.json) and compare with, "
                       "or write, golden/regression/<checkpoint-key>/. check also prints what each case exercises.")
    gsub = g.add_subparsers(dest="golden_command", metavar="ACTION")
    gsub.required = True
    p = gsub.add_parser("check", help="compare with the goldens (exit 1 on any failure)",
                        description="Compare every case with its golden; a failing case gets obtained.* and "
                        "comparison.json beside its golden. A missing golden fails. Prints which bound applied "
                        "to each metric (default, measured for this checkpoint, case override) with the float "
                        "noise measured for it.")
    add_model_options(p)
    _store_options(p)
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.set_defaults(func=cmd_golden, update=False)
    p = gsub.add_parser("update", help="write (replace) the goldens, atomically per case",
                        description="Write the golden of every selected case (temporary directory, then "
                        "rename). Review the result (audiosr-verify report) before committing it. For weights "
                        "other than the bundled random tiny ones (a --checkpoint), each case's float noise is "
                        "measured first (recomputed with another torch thread count and oneDNN off; 1e-6 relative; "
                        "+-1 ulp) "
                        "and bounds derived from it are stored in <store>/<key>/tolerances.json.")
    add_model_options(p)
    _store_options(p)
    p.add_argument("--no-measure-noise", action="store_true",
                   help="do not measure the float noise of a checkpoint's goldens (half the time): its cases are "
                   "then judged by the tiny-model default bounds, and golden check says so")
    p.set_defaults(func=cmd_golden, update=True, json=None)


def _run_settings(args, console):
    """The golden run's settings (and so its store key), known before any model is loaded."""
    from audiosr_verify.golden import RunSettings
    from audiosr_verify.subjects.loader import runs_product

    if not args.checkpoint:
        args.random_weights = True  # the bundled default
    product = runs_product(getattr(args, "subject", None))  # our product with a fault: our goldens, our settings
    if getattr(args, "subject", None) and not product:
        preset = args.preset or ("basic" if args.checkpoint else "tiny")
        if args.checkpoint:
            with console.status("hashing checkpoint (sha256)"):
                return RunSettings.for_checkpoint(args.checkpoint, preset=preset, level_mode="faithful",
                                                  mix="first", subject=args.subject)
        return RunSettings.for_subjects(args.subject, preset=preset, weights_seed=args.weights_seed)
    name = args._checked_config.name
    subject = args.subject if product else None
    if args.checkpoint:
        with console.status("hashing checkpoint (sha256)"):
            return RunSettings.for_checkpoint(args.checkpoint, preset=name, subject=subject)
    return RunSettings(preset=name, weights_seed=args.weights_seed, subject=subject)


def _preflight(store, cases, settings, update: bool) -> None:
    """Read the golden files this run will read (bounded, shape-checked) before a model is loaded.

    A malformed tolerances.json or meta.json is then one line up front, not
    an error after minutes of enhancing.
    """
    if not cases:
        return
    store.tolerances(settings.key, cases[0].name)
    if not update:
        for case in cases:
            store.load(settings.key, case.golden_name)


@contextlib.contextmanager
def _golden_source(args, console, store, settings):
    """(our network or a subject's outputs, a description) for `golden` and `report`."""
    if not getattr(args, "subject", None):
        from audiosr_verify.cli.common import load_network

        with console.status("loading model"):
            net, described = load_network(args)
        yield net, described
        return
    from audiosr_verify.checks.subject_check import opened_subject
    from audiosr_verify.golden import product_producer, subject_producer
    from audiosr_verify.subjects.loader import runs_product

    preset = args.preset or ("basic" if args.checkpoint else "tiny")
    console.print(f"loading subject {args.subject}", highlight=False)
    from audiosr_model.weights.load import resolve_device

    device = str(resolve_device(args.device))
    with opened_subject(args.subject, args.checkpoint, preset, args.weights_seed, device) as subject:
        if runs_product(args.subject):
            yield product_producer(subject, settings, store.inputs_dir), f"our product with {subject.name}"
        else:
            yield subject_producer(subject, settings, store.inputs_dir), f"subject {subject.name}"


def _store_and_cases(args):
    """The golden store and the selected cases, every option checked before a model is loaded.

    A selection of no case at all is refused (exit 2): a run that compares
    nothing must never print OK.
    """
    from audiosr_verify.golden import GoldenStore, select_cases

    check_model_options(args, require_weights=False)  # no weights given: the bundled random ones
    if getattr(args, "subject", None):
        from audiosr_verify.subjects.loader import resolve_factory

        resolve_factory(args.subject)  # a subject that cannot be found is one line, before anything is printed
    input_dir(args.inputs_dir, "--inputs-dir")
    if args.golden_dir is not None and Path(args.golden_dir).exists():
        input_dir(args.golden_dir, "--golden-dir")
    store = GoldenStore(args.golden_dir, args.inputs_dir)
    cases = store.cases()
    if not cases:
        raise AudioSRError("no regression cases (run: python tools/regression_inputs.py)",
                           store.inputs_dir / "cases.json")
    cases = select_cases(cases, args.case)
    if args.fast:
        cases = [c for c in cases if c.tier == "fast"]
    if not cases:  # --case names only full-tier cases, and --fast keeps none of them
        chosen = ", ".join(args.case) or "every case of cases.json"
        raise AudioSRError(f"--fast: none of the selected cases ({chosen}) is of the fast tier; nothing to compare")
    return store, cases


def _runnable(args, cases) -> None:
    """A subject's schema enhance runs no product option: a selection of nothing else is one line, not a run.

    (In a mixed selection the cases it cannot run are reported as not applicable, with why.)
    """
    from audiosr_verify.subjects.loader import runs_product

    subject = getattr(args, "subject", None)
    if subject and not runs_product(subject) and all(c.schema_problem() for c in cases):
        why = "; ".join(f"{c.name} {c.schema_problem()}" for c in cases[:3])
        raise AudioSRError(f"a subject's enhance (faithful level, channel 0) can run none of the selected cases: "
                           f"{why}")


def _require_goldens(store, cases, settings) -> None:
    """`golden check` with no golden at all for the selected cases compares nothing: one line, not a run."""
    if not any(store.exists(settings.key, c.golden_name) for c in cases):
        raise AudioSRError(f"no golden for any of the {len(cases)} selected case(s) under key {settings.key}; "
                           "nothing to compare (write them with: audiosr-verify golden update)",
                           store.key_dir(settings.key))


def _store_files(store, cases, settings) -> list[Path]:
    """What a `golden` run reads: its --json must never replace one of them (the index, an input, a golden)."""
    files = [store.inputs_dir / "cases.json"]
    for case in cases:
        files += [p for p in (store.input_path(case),) if p is not None]
        files += [store.case_dir(settings.key, case.golden_name) / n for n in ("meta.json", "output.safetensors")]
    key_dir = store.key_dir(settings.key)
    return files + [key_dir / "tolerances.json"]


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

    from audiosr_verify import golden as G
    from audiosr_verify.util.atomic import Reservation, Target

    err = Console(stderr=True)
    store, cases = _store_and_cases(args)
    _runnable(args, cases)
    if args.update:
        _refuse_product_update(args)
        _writable_store(store.root)
    settings = _run_settings(args, err)
    _preflight(store, cases, settings, args.update)
    if not args.update:
        _require_goldens(store, cases, settings)
    targets = [Target(Path(args.json), "--json", what="report")] if args.json else []
    # --json is checked (and locked) before the model loads, and never onto a file the run reads
    reserved = Reservation(targets, inputs=_store_files(store, cases, settings))
    with reserved, _golden_source(args, err, store, settings) as (source, described):
        err.print(f"model: {described}; golden key {settings.key}", highlight=False)
        with _progress(err) as progress:
            run = G.run_golden(source, settings, store, cases, update=args.update,
                               progress=_case_progress(progress),
                               measure_noise=False if getattr(args, "no_measure_noise", False) else None)
        _print_golden(args, run, store, settings, reserved)
    return EXIT_OK if run.passed else EXIT_FAILED


def _refuse_product_update(args) -> None:
    """A fault subject runs against our own goldens: writing its outputs there would make the fault the golden."""
    from audiosr_verify.subjects.loader import runs_product

    if runs_product(getattr(args, "subject", None)):
        raise AudioSRError(f"golden update --subject {args.subject}: a fault subject is checked against our own "
                           "goldens, which only our model writes (golden update without --subject)")


def _writable_store(root: Path) -> None:
    """`golden update` writes under ``root``: it must be (or be able to become) a writable directory.

    Checked up front without creating it: the store's directories are made as
    the first golden is published, so a run that fails before leaves none.
    """
    from audiosr_verify.util.atomic import probe_directory

    root = check_output_dir(root)
    if root.is_dir():
        probe_directory(root)


def _print_coverage(out, run, store, settings) -> None:
    """What each case of the run exercises: its input, the enhance options it runs, stage: path (the cases table in docs/golden-verdicts.md)."""
    from rich.table import Table

    from audiosr_verify.golden.coverage import coverage_rows

    by_name = {c.name: c for c in store.cases()}
    rows = coverage_rows([by_name[r.case] for r in run.results if r.case in by_name], settings, store.inputs_dir)
    if not rows:
        return
    table = Table(title="what the cases exercise (audiosr_verify/golden/coverage.py)", title_justify="left")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*row.values())
    out.print(table)


def _cases_done(run, update: bool) -> str:
    """How many cases the verdict rests on (a missing or stale golden was not compared with anything)."""
    done = ("updated",) if update else ("identical", "within_tolerance", "failed")
    n = sum(r.status in done for r in run.results)
    return f"{n} of {len(run.results)} case(s) {'written' if update else 'compared'}"


# the checked metrics shown in the bounds table, with short headers
_BOUND_COLUMNS = {"peak_relative_diff": "max |diff| / peak", "spectral_distance": "spectral dist dB",
                  "spectral_distance_worst_frame": "worst frame dB", "spectral_distance_hf": "above cutoff dB",
                  "si_sdr": "SI-SDR dB"}


def _print_bounds(out, args, run, settings) -> None:
    """Which bound applied to each metric, and the float noise measured for it (golden/noise.py); an update
    prints what it measured. Every bound looser than its default is printed with the noise that set it."""
    from rich.table import Table

    from audiosr_verify.golden.noise import bounds_measured_for
    from audiosr_verify.golden.policy import _fmt

    if args.update:
        for r in run.results:
            for note in r.notes:
                out.print(f"{r.case}: {note}", highlight=False, markup=False, soft_wrap=True)
        for notice in run.notices:
            out.print(notice, highlight=False, markup=False, soft_wrap=True)
        return
    shown = [r for r in run.results if r.bounds and r.status in ("identical", "within_tolerance", "failed")]
    plain = all(b["source"] == "default" and b.get("measured_noise") is None for r in shown
                for b in r.bounds.values())
    if shown and plain and bounds_measured_for(settings):
        out.print("bounds: the defaults, measured on these goldens (benchmarks/bench_golden_noise.py)",
                  highlight=False)
    elif shown and not plain:
        table = Table(title="bounds applied (source; float noise measured for this checkpoint)",
                      title_justify="left")
        table.add_column("case")
        names = [m for m in _BOUND_COLUMNS if any(m in r.bounds for r in shown)]
        for m in names:
            table.add_column(_BOUND_COLUMNS[m])
        for r in shown:
            cells = []
            for m in names:
                b = r.bounds.get(m)
                if b is None:
                    cells.append("-")
                    continue
                bound = " ".join(f"{'<=' if k == 'max' else '>='} {_fmt(v)}" for k, v in b["bound"].items())
                noise = b.get("measured_noise")
                cells.append(f"{bound} {b['source']}" + ("" if noise is None else f"\nnoise {_fmt(noise)}"))
            table.add_row(r.case, *cells)
        out.print(table)
        for r in shown:  # a failing case prints its notes in its own table below
            for note in r.notes if r.passed else ():
                if note.startswith("bound of "):
                    out.print(f"{r.case}: {note}", highlight=False, markup=False, soft_wrap=True)
    for notice in run.notices:
        out.print(notice, highlight=False, markup=False, soft_wrap=True)


def _print_golden(args, run, store, settings, reserved) -> None:
    from rich.table import Table

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
    _print_bounds(out, args, run, settings)
    if not args.update:
        _print_coverage(out, run, store, settings)
        from audiosr_verify.report.render import case_table_text

        for r in run.results:
            if not r.passed:
                out.print(case_table_text(r, width=out.width), highlight=False, markup=False)
            elif r.status == "not_applicable":
                out.print(r.summary_line(), highlight=False, markup=False)
    if args.json:
        import json

        text = json.dumps(run.to_dict(), indent=2) + "\n"
        reserved.publish(args.json, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    out.print(f"{run.summary_line()}; {_cases_done(run, args.update)}", highlight=False)
    if args.update:
        out.print(f"wrote {len(run.results)} golden(s) under {store.root / settings.key}; review "
                  "(audiosr-verify report) and commit them", highlight=False)


def cmd_report(args) -> int:
    from rich.console import Console

    from audiosr_verify.report import sections as R
    from audiosr_verify.report.render import print_rich, write_all
    from audiosr_verify.testing.property_run import run_property_tests
    from audiosr_verify.util.atomic import Reservation, Target

    err = Console(stderr=True)
    store, cases = _store_and_cases(args)
    out_dir, created = output_dir(args.output_dir)
    # The three report files, locked for the run so two reports into one directory cannot interleave.
    reserved = Reservation([Target(out_dir / n, "report", what="report")
                            for n in ("report.json", "report.md", "report.html")])
    t0 = time.perf_counter()
    try:
        settings = _run_settings(args, err)
        _preflight(store, cases, settings, update=False)
        with reserved, _golden_source(args, err, store, settings) as (source, described):
            with _progress(err) as progress:
                stage = progress.add_task("report", total=None)
                report = R.build_report(source, settings, store=store, cases=cases,
                                        properties=None if args.no_properties else
                                        (lambda: run_property_tests(subject=args.subject or "reference")),
                                        strict=args.strict,
                                        model_description=described,
                                        progress=lambda what: progress.update(stage, description=what),
                                        case_progress=_case_progress(progress), subject=args.subject or "reference")
            print_rich(report, _out_console())
            try:
                written = write_all(report, out_dir)
            except OSError as exc:  # report/render.py writes through its own temporary files
                raise AudioSRError(f"cannot write the report: {exc.strerror or exc}", out_dir) from None
    except BaseException:
        remove_if_empty(out_dir, created)
        raise
    err.print(f"wrote {', '.join(str(p) for p in written)} in {time.perf_counter() - t0:.0f} s", highlight=False,
              soft_wrap=True)
    return report.exit_code

