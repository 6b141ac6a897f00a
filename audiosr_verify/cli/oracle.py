"""`audiosr-verify oracle setup|export` and `audiosr-verify compare`.

- ``oracle setup [--path P] [--force]``: build the venv that runs the ORIGINAL
  audiosr (``audiosr_verify.oracle.venv``), with progress on stderr.
- ``oracle export [--golden-dir golden] [--manifests-only|--fixtures-only]``:
  write the key manifests and the stage fixtures (``audiosr_verify.oracle.export``).
- ``compare --stage S [--preset tiny] [--fault F] [--json FILE]``: run one stage
  in both models with hooks on every module and name the first module whose
  output diverges (``audiosr_verify.checks.first_divergence``).

Exit codes: 0 ok, 1 a divergence / failed export, 2 (via the CLI's main) an
`AudioSRError`, e.g. the oracle venv is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from audiosr_model.errors import AudioSRError
from audiosr_verify.cli.common import (EXIT_FAILED, EXIT_OK, float_in, guidance_type, input_dir, int_in, seed_type,
                                       steps_type)
from audiosr_verify.util.paths import data_dir


class _LazyChoices:
    """``choices=`` read from checks.first_divergence (and torch) only when `compare` parses or shows them."""

    def __init__(self, name: str):
        self.name = name

    def _names(self) -> list[str]:
        from audiosr_verify.checks import first_divergence

        return list(getattr(first_divergence, self.name))

    def __contains__(self, item) -> bool:
        return item in self._names()

    def __iter__(self):
        return iter(self._names())


def add_verbs(sub) -> None:
    o = sub.add_parser("oracle", help="set up and export the ORIGINAL audiosr (reference oracle)",
                       description="The original audiosr 0.0.7 runs offline in its own virtual environment; "
                       "`setup` builds it, `export` writes golden/manifests and golden/oracle/tiny with it.")
    osub = o.add_subparsers(dest="oracle_command", metavar="ACTION")
    osub.required = True
    p = osub.add_parser("setup", help="build the oracle venv (about 70 s with the wheels on disk)",
                        description="Build (or confirm) the oracle venv: torch alone, torch-dependent packages "
                        "with --no-deps, then the pinned dependencies; finishes with an import self-test.")
    p.add_argument("--path", metavar="DIR", help="venv directory (default ~/.cache/audiosr-verify/oracle-venv "
                   "or $AUDIOSR_ORACLE_VENV)")
    p.add_argument("--force", action="store_true", help="rebuild even if the venv is up to date")
    p.set_defaults(func=cmd_oracle_setup)
    p = osub.add_parser("export", help="write manifests and stage fixtures with the original",
                        description="Without --checkpoint: run the original on the bundled fixture inputs and "
                        "write golden/manifests/*.json and golden/oracle/tiny/ (schema: golden/oracle/README.md). "
                        "With --checkpoint CKPT --inputs FILE... --output-dir FIX: run the original with YOUR "
                        "checkpoint on YOUR audio (one window per file) and write a fixture set that "
                        "`check SUBJECT --fixtures FIX --checkpoint CKPT` reads.")
    p.add_argument("--golden-dir", default=None, metavar="DIR", help="golden root (default: the project's golden/)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--manifests-only", action="store_true")
    g.add_argument("--fixtures-only", action="store_true")
    u = p.add_argument_group("fixtures from your checkpoint and audio")
    u.add_argument("--checkpoint", metavar="CKPT", help="the checkpoint (original .bin/.ckpt or safetensors, the "
                   "original's key layout)")
    u.add_argument("--inputs", nargs="+", metavar="FILE", help="audio files (any rate, mono or multi-channel)")
    u.add_argument("--output-dir", "-o", metavar="FIX", help="the fixture set to write (a new or empty folder)")
    u.add_argument("--preset", choices=["basic", "tiny"], default=None,
                   help="layout of the checkpoint (default basic: audiosr_basic and audiosr_speech)")
    u.add_argument("--config", metavar="YAML", help="a model configuration that is neither preset (the YAML of "
                   "`enhance --config`: other VAE, UNet or vocoder sizes); the original is built with it and the "
                   "set keeps a copy")
    u.add_argument("--steps", type=steps_type, default=50, help="DDIM steps (default 50)")
    u.add_argument("--seed", type=seed_type, default=42, help="seed (default 42)")
    u.add_argument("--guidance", type=guidance_type, default=3.5, help="guidance scale (default 3.5)")
    u.add_argument("--duration", type=float_in(0.5, 60, "--duration"), default=5.12, metavar="SECONDS",
                   help="window cut from the start of each file (default 5.12 s, the original's window)")
    u.add_argument("--plain-runs", choices=["first", "all"], default="first",
                   help="inputs on which the original's plain super_resolution also runs, to prove the "
                        "instrumented run gave the same output (sha256): the first (default; the same code path "
                        "for every input, and minutes per input at full size) or all")
    u.add_argument("--no-calibrate", action="store_true",
                   help="skip the calibration (bounds from the original's float noise against float64); "
                        "check then uses the schema's bounds, measured on the tiny network")
    p.set_defaults(func=cmd_oracle_export)
    p = osub.add_parser("calibrate", help="a fixture set's bounds against float64, and the faults they catch",
                        description="Measure the original's float noise against our reference in float64 on every "
                        "network stage of FIX (what export stores as calibration.json) and print noise, bound "
                        "and margin per tensor; with --faults, run the fault catalogue on the stages each fault "
                        "owns and print each fault's error against its bound (a fault the bounds miss is "
                        "listed as not caught). Writes nothing into FIX.")
    p.add_argument("fixtures", metavar="FIX", help="a fixture set made by `oracle export --checkpoint`")
    p.add_argument("--checkpoint", metavar="CKPT", required=True, help="the checkpoint FIX was made from")
    p.add_argument("--faults", action="store_true", help="also run the fault catalogue at the set's size")
    p.add_argument("--stored", action="store_true",
                   help="show the calibration the set was exported with (its sha256 checked) instead of measuring "
                        "it again (minutes at full size); with --faults, only the fault table is computed")
    p.add_argument("--json", metavar="FILE", help="write the calibration (and fault table) as JSON")
    p.set_defaults(func=cmd_oracle_calibrate)

    p = sub.add_parser("compare", help="first diverging module of one stage, ours vs the original",
                       description="Run one stage in our model and in the original (same random weights, the "
                       "fixture's stage input) with forward hooks on every module; list module outputs in "
                       "execution order with their error and mark the first one past the tolerance.")
    p.add_argument("--stage", required=True, choices=_LazyChoices("STAGES"), metavar="STAGE",
                   help="which stage: %(choices)s")
    p.add_argument("--preset", default="tiny", choices=["tiny", "basic"],
                   help="model size (default tiny; basic needs ~8 GB and minutes)")
    p.add_argument("--fault", choices=_LazyChoices("FAULTS"), metavar="FAULT",
                   help="inject a demonstration bug into OUR model: %(choices)s")
    p.add_argument("--atol", type=float_in(0.0, None, "--atol"), default=1e-5,
                   help="tolerance on each module output (default 1e-5)")
    p.add_argument("--rtol", type=float_in(0.0, None, "--rtol"), default=0.0, help="relative tolerance (default 0)")
    p.add_argument("--max-rows", type=int_in(0, None, "--max-rows"), default=60, metavar="N",
                   help="rows shown around the first divergence (0: all; --json always has all)")
    p.add_argument("--json", metavar="FILE", help="write the full result as JSON")
    p.set_defaults(func=cmd_compare)


def _progress(console):
    return lambda msg: console.print(f"[dim]{msg}[/dim]", highlight=False)


def cmd_oracle_setup(args) -> int:
    from rich.console import Console

    from audiosr_verify.oracle import venv

    console = Console(stderr=True)
    try:
        py = venv.create_oracle_venv(args.path, progress=_progress(console), force=args.force)
    except venv.OracleVenvError as exc:
        raise AudioSRError(str(exc).splitlines()[0]) from None
    print(py)
    return EXIT_OK


def cmd_oracle_export(args) -> int:
    from rich.console import Console

    from audiosr_verify.oracle import driver, export

    console = Console(stderr=True)
    user = [a for a in ("checkpoint", "inputs", "output_dir") if getattr(args, a)]
    if user:
        return _export_user(args, console, user)
    golden = input_dir(args.golden_dir, "--golden-dir") if args.golden_dir else data_dir()
    say = _progress(console)
    try:
        if not args.fixtures_only:
            export.export_manifests(golden / "manifests", progress=say)
        if not args.manifests_only:
            export.export_fixtures(golden, progress=say)
    except driver.OracleUnavailable:
        from audiosr_verify.oracle import venv

        raise AudioSRError(f"the original audiosr is not set up (no oracle venv at {venv.default_path()}): "
                           "run `audiosr-verify oracle setup`") from None
    except driver.OracleError as exc:
        console.print(f"[red]oracle export failed:[/red] {exc}", highlight=False)
        return EXIT_FAILED
    console.print(f"[green]exported[/green] into {golden}")
    return EXIT_OK


def _export_user(args, console, given: list[str]) -> int:
    """``oracle export --checkpoint --inputs --output-dir``: every option and file checked first, the set
    published whole."""
    from audiosr_verify.oracle import driver
    from audiosr_verify.oracle.user_fixtures import check_plan_checkpoint, export_user_fixtures, plan_export

    missing = [f"--{a.replace('_', '-')}" for a in ("checkpoint", "inputs", "output_dir") if a not in given]
    if missing:
        raise AudioSRError(f"fixtures from a checkpoint need --checkpoint, --inputs and --output-dir (missing "
                           f"{', '.join(missing)})")
    if args.golden_dir or args.manifests_only or args.fixtures_only:
        raise AudioSRError("--golden-dir, --manifests-only and --fixtures-only are for the bundled fixtures, "
                           "not with --checkpoint")
    with console.status("checking the inputs and the checkpoint") as status:
        say = lambda m: status.update(m)  # noqa: E731
        if args.config is not None and args.preset is not None:
            raise AudioSRError("--config and --preset name the size twice: give one")
        plan = plan_export(args.checkpoint, args.inputs, args.output_dir, steps=args.steps,
                           preset=args.config if args.config is not None else (args.preset or "basic"),
                           seed=args.seed, guidance=args.guidance, duration=args.duration, progress=say,
                           plain_runs=args.plain_runs)
        try:
            driver.oracle_python()  # no oracle venv: one line now, not after the checkpoint was hashed
        except driver.OracleUnavailable as exc:
            raise AudioSRError(f"the original audiosr is not set up ({str(exc).splitlines()[0]}): run "
                               "`audiosr-verify oracle setup`") from None
        check_plan_checkpoint(plan, say)
        say = lambda m: (status.update(m), console.print(f"[dim]{m}[/dim]", highlight=False))  # noqa: E731
        try:
            meta = export_user_fixtures(plan, progress=say, finish=None if args.no_calibrate else
                                        lambda fix, weights: _calibrate_into(fix, weights, say))
        except driver.OracleError as exc:
            console.print(f"[red]oracle export failed:[/red] {str(exc).splitlines()[0]}", highlight=False)
            return EXIT_FAILED
    size = sum(p.stat().st_size for p in Path(args.output_dir).rglob("*") if p.is_file())
    console.print(f"[green]exported[/green] {len(meta['inputs'])} input(s), {args.steps} steps, "
                  f"{size / 1e6:.1f} MB into {args.output_dir}", highlight=False)
    for name, errors in (meta.get("errors") or {}).items():  # the original's own failures: recorded, and said
        first = next(iter(errors.values()))
        console.print(f"[yellow]warning:[/yellow] the original fails on input {name} ({first.get('type')}: "
                      f"{first.get('message')} in {', '.join(errors)}): `check` compares only what it "
                      "computed before that; give audio it can enhance for a fuller check", highlight=False)
    return EXIT_OK


def _calibrate_into(fix: Path, weights: Path, say) -> list[str]:
    from audiosr_verify.checks.calibration import calibrate, write

    cal = calibrate(fix, weights, say)
    say(f"calibrated {len(cal.rows)} tensors in {cal.seconds:.0f} s")
    return [write(cal, fix).name]


def cmd_oracle_calibrate(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from audiosr_verify.checks.calibration import calibrate, fault_table, stored
    from audiosr_verify.checks.subject_check import fixture_checkpoint
    from audiosr_verify.oracle.fixture_validation import open_metadata
    from audiosr_verify.util.atomic import Reservation, Target

    fix = Path(args.fixtures)
    meta = open_metadata(fix)
    err = Console(stderr=True)
    out = Console() if sys.stdout.isatty() else Console(width=160)
    with Reservation([Target(Path(args.json), "--json", what="report")] if args.json else []) as reserved:
        with err.status("calibrating") as status:
            say = lambda m: status.update(m)  # noqa: E731
            weights = fixture_checkpoint(meta, fix, args.checkpoint, say)
            if weights is None:
                raise AudioSRError("calibration is for sets exported from a checkpoint; the bundled sets use the "
                                   "schema's bounds", fix)
            if args.stored:
                cal = stored(fix, meta)
                if cal is None:
                    raise AudioSRError("--stored: the set has no calibration (exported with --no-calibrate); run "
                                       "without --stored to measure it", fix)
            else:
                cal = calibrate(fix, weights, say)
            faults = fault_table(fix, weights, progress=say) if args.faults else []
        table = Table(title=f"{fix}: the original's float noise against float64, and the bounds"
                      + (" (stored at export)" if args.stored else ""))
        for col in ("tensor", "input", "noise", "schema atol", "bound", "bound / noise"):
            table.add_column(col)
        for r in cal.rows:
            table.add_row(r.name, r.input, f"{r.noise:.3g}", f"{r.schema_atol:.3g}", f"{r.bound:.3g}",
                          f"{r.bound / r.noise:.1f}" if r.noise else "-")
        out.print(table)
        if faults:
            ft = Table(title="the fault catalogue on the stages each fault owns, under these bounds")
            for col in ("fault", "stage", "worst tensor", "error", "bound", "error / bound", "caught"):
                ft.add_column(col)
            for f in faults:
                ft.add_row(f.name, f.stage, f.worst, f"{f.error:.3g}", f"{f.bound:.3g}", f"{f.ratio:.3g}",
                           "yes" if f.caught else f"NO {f.detail}".strip())
            out.print(ft)
            missed = [f.name for f in faults if not f.caught]
            out.print(f"{len(faults) - len(missed)} of {len(faults)} faults caught" +
                      (f"; NOT caught: {', '.join(missed)}" if missed else ""), highlight=False)
        if args.json:
            data = {**cal.to_dict(), "faults": [f.to_dict() for f in faults]}
            text = json.dumps(data, indent=1) + "\n"
            reserved.publish(args.json, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return EXIT_OK if not any(not f.caught for f in faults) else EXIT_FAILED


def cmd_compare(args) -> int:
    from rich.console import Console

    from audiosr_verify.checks.first_divergence import find_first_divergence, render_table
    from audiosr_verify.oracle import driver
    from audiosr_verify.util.atomic import Reservation, Target

    console = Console()
    err = Console(stderr=True)
    reserved = Reservation([Target(Path(args.json), "--json", what="report")] if args.json else [])
    with reserved:
        return _compare(args, console, err, reserved, find_first_divergence, render_table, driver)


def _compare(args, console, err, reserved, find_first_divergence, render_table, driver) -> int:
    try:
        result = find_first_divergence(args.stage, args.preset, args.fault, args.atol, args.rtol,
                                       progress=_progress(err))
    except driver.OracleUnavailable as exc:
        raise AudioSRError(f"the original audiosr is not available: {str(exc).splitlines()[0]}") from None
    except driver.OracleError as exc:
        raise AudioSRError(f"the original failed to run the {args.stage} stage: {str(exc).splitlines()[0]}") from None
    if result.fault_description:
        err.print(f"fault injected into OUR model: {result.fault_description}", highlight=False)
    console.print(render_table(result, args.max_rows))
    if result.output is not None:
        o = result.output
        console.print(f"stage output: max |diff| {o.max_abs:.3g}" + (f" ({o.note})" if o.note else ""), highlight=False)
    style = "green" if result.ok else "bold red"
    console.print(f"[{style}]{result.summary_line()}[/{style}]", highlight=False)
    if args.json:
        text = json.dumps(result.to_dict(), indent=1) + "\n"
        reserved.publish(args.json, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        err.print(f"wrote {args.json}", highlight=False, markup=False)
    return EXIT_OK if result.ok else EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    import argparse

    parser = argparse.ArgumentParser(prog="audiosr-verify")
    add_verbs(parser.add_subparsers(dest="command", required=True))
    a = parser.parse_args()
    try:
        sys.exit(a.func(a))
    except AudioSRError as exc:
        print(f"audiosr-verify: error: {exc}", file=sys.stderr)
        sys.exit(2)
