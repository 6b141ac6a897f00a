"""`audiosr-verify check SUBJECT`: every check of the harness on one implementation.

Exit 0 when every stage the subject provides passes, 1 when one fails, 2 on a
usage or input error (a subject that cannot be found or loaded, bad options).
"""

from __future__ import annotations

import sys
from pathlib import Path

from audiosr_model.errors import AudioSRError
from audiosr_verify.cli.common import EXIT_FAILED, EXIT_OK, float_in, output_dir, parse_options, remove_if_empty


def add_verbs(sub) -> None:
    # Only the light loader here: the stage checks (and torch) load when `check` runs, so
    # every other verb, and a bad option, answers without importing them.
    from audiosr_verify.subjects.loader import describe_builtins

    p = sub.add_parser(
        "check", help="verify an implementation (a subject) stage by stage against the original",
        description="Run state-dict parity, stage parity against the original's fixtures (teacher-forced and "
        "chained) and first divergence on SUBJECT: a built-in name (" + describe_builtins() + "), "
        "package.module:factory, or path/to/file.py:factory. Exit 0 when every stage the subject provides "
        "passes, 1 when one fails, 2 on a usage or input error.")
    p.add_argument("subject", metavar="SUBJECT", help="reference | original | fault:NAME | module:factory | file.py:factory")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON")
    p.add_argument("--output-dir", "-o", metavar="DIR", help="write check.json, check.md and check.html here")
    p.add_argument("--input", action="append", default=None, metavar="NAME",
                   help="only this fixture input (repeatable; default: all)")
    p.add_argument("--view", choices=["both", "teacher", "chained"], default="both",
                   help="teacher-forced, chained, or both (default)")
    p.add_argument("--no-modules", action="store_true", help="do not look for the first diverging module")
    p.add_argument("--fixtures", metavar="DIR", default=None,
                   help="oracle fixture directory (default: the bundled golden/oracle/tiny)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to the subject's factory in context.options (repeatable)")
    p.add_argument("--device", default="cpu", help="device given to the subject (default cpu)")
    p.add_argument("--bounds", choices=["auto", "stages", "fp32", "bf16"], default="auto",
                   help="the verdict: 'stages' holds every stage to float32 rounding (the default for every "
                        "subject but precision:*); 'bf16' / 'fp32' judge in metric terms (network stage errors, "
                        "LSD below and above the cutoff, SI-SDR, level) under that precision's measured bounds "
                        "(the default for precision:P subjects: P's own)")
    p.add_argument("--checkpoint", metavar="CKPT", default=None,
                   help="the checkpoint a fixture set was exported from (`oracle export --checkpoint`): "
                        "recognised by its sha256; the subject gets its safetensors copy")
    p.add_argument("--stage-timeout", type=float_in(0, 86400, "--stage-timeout"), default=None, metavar="SECONDS",
                   help="the most one stage call may take; a call past it fails its stage and the run stops "
                        "there, keeping its results (default: scaled to the stage and the fixtures' network "
                        "size, 120 s and more; 0: no bound)")
    p.set_defaults(func=cmd_check)




def _metric_bounds(args) -> str | None:
    """The precision whose metric bounds judge this run, or None for the stage-by-stage verdict."""
    if args.bounds == "stages":
        return None
    if args.bounds != "auto":
        return args.bounds
    from audiosr_verify.subjects.spec import parse_spec

    spec = parse_spec(args.subject, strict=False)  # a spec that names nothing fails where it is loaded
    if spec.kind == "precision":
        from audiosr_verify.subjects.fast_paths import parse

        return parse(spec.target)[0]  # (precision, attention, compile)
    return None


def _check_fixtures(args) -> None:
    """The fixture set and the inputs asked for, validated before any subject is built (one line, exit 2)."""
    from audiosr_verify.checks import stages as S
    from audiosr_verify.oracle.fixtures import load_fixture_set

    given = args.fixtures or S.DEFAULT_FIXTURES
    fdir = S._resolve(given)
    if not fdir.exists():
        fdir = Path(given)  # name the path as the user gave it, not its lookup inside the harness data
    load_fixture_set(fdir, S._resolve(S.DEFAULT_INPUTS), args.input)  # every file read and checked: a few MB


def cmd_check(args) -> int:
    _check_fixtures(args)
    precision = _metric_bounds(args)
    if precision is not None:
        return _cmd_check_metrics(args, precision)
    from audiosr_verify.checks import stages as S
    from audiosr_verify.checks.subject_check import run_check

    options = parse_options(args.option)  # every option checked before the subject is loaded
    fixtures = args.fixtures or S.DEFAULT_FIXTURES  # relative: inside the harness data (checks/stages.py)
    views = ("teacher", "chained") if args.view == "both" else (args.view,)

    def run(status):
        return run_check(args.subject, fixture_dir=fixtures, inputs=args.input, views=views,
                         modules=not args.no_modules, device=args.device, options=options,
                         progress=lambda m: status.update(m), stage_timeout=args.stage_timeout,
                         checkpoint=args.checkpoint)

    return _run_and_render(args, "checking", run)


def _cmd_check_metrics(args, precision: str) -> int:
    """``check`` in metric terms (checks/metric_verdict.py): what a reduced-precision configuration is judged by."""
    from audiosr_verify.checks import stages as S
    from audiosr_verify.checks.metric_verdict import check_precision

    if args.option or args.view != "both" or args.no_modules or args.checkpoint:
        raise AudioSRError("--bounds " + precision + ": only --json, --output-dir, --input, --fixtures and --device "
                           "apply to the metric verdict (use --bounds stages for the stage-by-stage check)")

    def run(status):
        return check_precision(args.subject, precision, fixture_dir=args.fixtures or S.DEFAULT_FIXTURES,
                               inputs=args.input, device=args.device, stage_timeout=args.stage_timeout)

    return _run_and_render(args, "checking in metric terms", run)


def _run_and_render(args, what: str, run) -> int:
    """Run the check (``run(status)``), print its result and write --json / --output-dir, all through the one
    renderer (report/check.py) whichever verdict it is."""
    from rich.console import Console

    from audiosr_verify.report.check import documents, print_result
    from audiosr_verify.util.atomic import Reservation, Target

    targets = [Target(Path(args.json), "--json", what="report")] if args.json else []
    created, out = False, None
    if args.output_dir:
        out, created = output_dir(args.output_dir)
        targets += [Target(out / n, "--output-dir", what="report") for n in ("check.json", "check.md", "check.html")]
    err = Console(stderr=True)
    try:
        with Reservation(targets) as reserved:
            with err.status(what) as status:
                result = run(status)
            console = Console() if sys.stdout.isatty() else Console(width=160)
            print_result(console, result)
            texts = documents(result)
            for t in targets:
                text = texts["check.json"] if t.source == "--json" else texts[t.path.name]
                reserved.publish(t.path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    except BaseException:
        if out is not None:
            remove_if_empty(out, created)
        raise
    return EXIT_OK if result.ok else EXIT_FAILED
