"""`audiosr-verify parity` and `audiosr-verify manifest`.

`add_verbs(sub)` registers both verbs on the `audiosr-verify` sub-parser;
each verb takes parsed arguments and returns an exit code: 0 when every key is
accounted for, 1 when some key is not, and `AudioSRError` (bad file, bad
option) propagates to the CLI's main, which prints it on one line (exit 2).

"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from audiosr_verify.cli.common import EXIT_FAILED, EXIT_OK, int_in
from audiosr_verify.util.atomic import Reservation, Target

PRESETS = ("basic", "tiny")


def add_verbs(sub) -> None:
    """Register `parity` and `manifest` on an argparse sub-parsers object."""
    p = sub.add_parser(
        "parity", help="state-dict parity: every checkpoint key accounted for",
        description="Classify every key of CHECKPOINT (torch zip .bin/.ckpt/.pt, .safetensors, or a key "
        "manifest .json) against our network: matched, ignored (declared group), missing, unexpected, "
        "shape or dtype mismatch. Reads no tensor data unless --hash. Exit 0 when every key is "
        "accounted for, 1 otherwise, 2 on a bad file or option.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file or key manifest (JSON)")
    p.add_argument("--preset", default="basic", choices=PRESETS, help="our network's layout (default basic)")
    p.add_argument("--manifest", metavar="FILE",
                   help="reference manifest (e.g. the original layout) to compare the key set with (informational)")
    p.add_argument("--json", metavar="FILE", help="write the JSON report")
    p.add_argument("--markdown", metavar="FILE", help="write a Markdown report (for pull requests)")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    p.add_argument("--hash", action="store_true",
                   help="read tensor data: file sha256 and groups of identical tensors")
    p.add_argument("--no-layout-cache", action="store_true",
                   help="build our network's layout instead of reading the fingerprinted cache "
                   "($AUDIOSR_VERIFY_CACHE or ~/.cache/audiosr-verify)")
    p.add_argument("--max-problems", type=int_in(0, None, "--max-problems"), default=100, metavar="N",
                   help="offending keys listed in the terminal (default 100; all are in --json)")
    p.set_defaults(func=cmd_parity)

    p = sub.add_parser(
        "manifest", help="write the key manifest (names, shapes, dtypes) of a checkpoint",
        description="Write a JSON manifest of CHECKPOINT's keys, shapes and dtypes (state-dict order), "
        "in the format of golden/manifests/*.json. Reads no tensor data unless --hash.")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file (or a manifest to re-describe)")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="manifest to write")
    p.add_argument("--preset", default=None, choices=PRESETS, help="preset recorded in the manifest (optional)")
    p.add_argument("--hash", action="store_true", help="record the file's sha256")
    p.set_defaults(func=cmd_manifest)


def _outputs(args, names: tuple[str, ...]) -> Reservation:
    """The report files of this run, checked (never the checkpoint itself, never one file twice) and locked.

    Checked before any work; `Reservation` holds a lock on each until the run
    ends, and each is published whole (temporary file, then rename).
    """
    from audiosr_model.io.safe_open import check_input

    check_input(args.checkpoint, "checkpoint or manifest")  # a pipe or device is refused before any work
    if getattr(args, "manifest", None):
        check_input(args.manifest, "manifest")
    targets = [Target(Path(getattr(args, n)), f"--{n}", what="report" if n != "output" else "manifest")
               for n in names if getattr(args, n, None)]
    inputs = [args.checkpoint] + ([args.manifest] if getattr(args, "manifest", None) else [])
    return Reservation(targets, inputs=inputs)


def _text_writer(text: str):
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return write


def _progress(console):
    """A progress callback for run_parity driving a rich status line on stderr."""
    status = console.status("listing checkpoint")
    labels = {"listing": "listing checkpoint", "model": "building our network (meta device)",
              "classify": "classifying keys", "sha256": "hashing file", "digests": "hashing tensors"}

    def report(stage: str, done: int, total: int) -> None:
        label = labels.get(stage, stage)
        if stage == "sha256" and total:
            label = f"{label} {100 * done // total}%"
        status.update(label)

    return status, report


def cmd_parity(args) -> int:
    from rich.console import Console

    from audiosr_verify.checks import state_dict as parity
    from audiosr_verify.report import parity as parity_report

    with _outputs(args, ("json", "markdown", "html")) as reserved:
        err = Console(stderr=True)
        status, report = _progress(err)
        with status:
            result = parity.run_parity(args.checkpoint, preset=args.preset, manifest=args.manifest,
                                       hash=args.hash, progress=report, layout_cache=not args.no_layout_cache)
        # Logs and pipes get a wide table instead of rich's 80-column default.
        out = Console() if sys.stdout.isatty() else Console(width=160)
        parity_report.print_rich(result, out, max_problems=args.max_problems)
        written = []
        for name, render in (("json", parity_report.to_json), ("markdown", parity_report.to_markdown),
                             ("html", parity_report.to_html)):
            target = getattr(args, name)
            if target:
                reserved.publish(target, _text_writer(render(result)))
                written.append(target)
    if written:
        err.print(f"wrote {', '.join(written)}", highlight=False)
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_manifest(args) -> int:
    from audiosr_verify.checks import state_dict as parity

    with _outputs(args, ("output",)) as reserved:
        manifest = parity.build_manifest(args.checkpoint, preset=args.preset, hash=args.hash)
        reserved.publish(args.output, _text_writer(json.dumps(manifest, indent=1) + "\n"))
    print(f"wrote {args.output}: {len(manifest['keys']):,} keys from {args.checkpoint} "
          f"({manifest['source']['format']})")
    return EXIT_OK

