"""`audiosr-verify check SUBJECT`: every check of the harness on one implementation.

Exit 0 when every stage the subject provides passes, 1 when one fails, 2 on a
usage or input error (a subject that cannot be found or loaded, bad options).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from audiosr_model.errors import AudioSRError
from audiosr_verify.cli.common import EXIT_FAILED, EXIT_OK


def add_verbs(sub) -> None:
    from audiosr_verify.checks import stages as S
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
    p.add_argument("--fixtures", metavar="DIR", default=S.DEFAULT_FIXTURES,
                   help="oracle fixture directory (default: the bundled golden/oracle/tiny)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to the subject's factory in context.options (repeatable)")
    p.add_argument("--device", default="cpu", help="device given to the subject (default cpu)")
    p.set_defaults(func=cmd_check)


def _options(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise AudioSRError(f"--option {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def cmd_check(args) -> int:
    from rich.console import Console

    from audiosr_verify.checks.subject_check import run_check
    from audiosr_verify.report.check import check_table, to_html, to_markdown
    from audiosr_verify.util.atomic import atomic_write

    targets = [Path(t) for t in ([args.json] if args.json else [])]
    if args.output_dir:
        out = Path(args.output_dir)
        if out.exists() and not out.is_dir():
            raise AudioSRError("output path exists and is not a directory", out)
    views = ("teacher", "chained") if args.view == "both" else (args.view,)
    err = Console(stderr=True)
    with err.status("checking") as status:
        result = run_check(args.subject, fixture_dir=args.fixtures, inputs=args.input, views=views,
                           modules=not args.no_modules, device=args.device, options=_options(args.option),
                           progress=lambda m: status.update(m))
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(check_table(result))
    first = result.first_divergence()
    if first:
        where = first["stage"] + (f", module {first['module']}" if first.get("module") else "")
        detail = first.get("module_detail") or first.get("detail") or ""
        console.print(f"first divergence: {where} ({first.get('fixture', '')} on {first.get('input', '-')}): {detail}",
                      highlight=False, markup=False)
    console.print(result.summary_line(), highlight=False, markup=False)
    data = json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"
    for t in targets:
        atomic_write(t, data)
    if args.output_dir:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "check.json", data)
        atomic_write(out / "check.md", to_markdown(result))
        atomic_write(out / "check.html", to_html(result))
    return EXIT_OK if result.ok else EXIT_FAILED
