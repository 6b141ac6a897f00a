"""`audiosr-verify evaluate CORPUS`: every audio file of a folder through a subject, on a process pool or Ray.

Exit 0 when every file was evaluated, 1 when some were unreadable or failed
(they are in the results; the run went on), 2 on a usage or input error
(including a corpus with no readable audio at all).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from audiosr_model.audio_options import MAX_GUIDANCE, MAX_STEPS
from audiosr_model.errors import AudioSRError
from audiosr_verify.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_model_options,
    guidance_type,
    int_in,
    parse_options,
    seed_type,
    steps_type,
)
from audiosr_verify.corpus.options import INPUT_RATE_RANGE, THREADS_RANGE, WORKERS_RANGE, WORST_RANGE


def add_verbs(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="parity and quality over a whole corpus (process pool or Ray)",
        description="Run every audio file under CORPUS (recursively) through SUBJECT and compare: with --against "
        "S2 with another subject on the same input and seed (parity), with --golden with the file itself as "
        "ground truth (the subject gets it band-limited to --input-rate), else with the input at 48 kHz. "
        "Rows go to OUT/results.jsonl as each file finishes; a re-run with the same OUT skips finished files. "
        "OUT/summary.json and OUT/summary.html summarise. Exit 0 when every file was evaluated, 1 when some "
        "were unreadable or failed, 2 on a usage or input error.")
    p.add_argument("corpus", metavar="CORPUS", help="folder of audio files (searched recursively)")
    p.add_argument("--subject", default="reference", metavar="S",
                   help="reference | original | fault:NAME | module:factory | file.py:factory (default reference)")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--against", metavar="S2", help="compare with this subject's output (parity)")
    ref.add_argument("--golden", action="store_true",
                     help="each file is the ground truth: enhance it band-limited to --input-rate, compare with it")
    p.add_argument("--input-rate", type=int_in(*INPUT_RATE_RANGE, "input-rate"), default=16000,
                   help=f"--golden: rate of the subject's input, {INPUT_RATE_RANGE[0]} to {INPUT_RATE_RANGE[1]} "
                   "(default 16000)")
    p.add_argument("--output-dir", "-o", required=True, metavar="OUT", help="results, summary and report go here")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: a process pool on this machine (default); ray: Ray actors (pip install "
                   "'audiosr-verify[ray]')")
    p.add_argument("--workers", type=int_in(*WORKERS_RANGE, "workers"), default=1,
                   help=f"worker processes or actors, one model each, up to {WORKERS_RANGE[1]} (default 1)")
    p.add_argument("--threads", type=int_in(*THREADS_RANGE, "threads"), default=1,
                   help="torch threads per worker (default 1); results are reproducible for a fixed value")
    p.add_argument("--address", metavar="ADDR", help="--engine ray: join this cluster ('auto' or HOST:PORT)")
    add_model_options(p)
    # the same types (and so the same ranges and messages) as enhance: cli/common.py, from model/audio_options.py
    p.add_argument("--steps", type=steps_type, default=50, help=f"DDIM steps, 1 to {MAX_STEPS} (default 50)")
    p.add_argument("--guidance", type=guidance_type, default=3.5,
                   help=f"classifier-free guidance scale, 0 to {MAX_GUIDANCE:g} (default 3.5)")
    p.add_argument("--seed", type=seed_type, default=42,
                   help="sampling seed, 0 to 2**32-1, the same for every file (default 42)")
    p.add_argument("--no-stages", action="store_true", help="--against: skip the per-file stage errors")
    p.add_argument("--worst", type=int_in(*WORST_RANGE, "worst"), default=8,
                   help="files shown with spectrograms in the report (default 8)")
    p.add_argument("--rank-by", metavar="METRIC",
                   help="metric that ranks the worst files (default spectral_distance with --against, else lsd)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to the subjects' factories in context.options (repeatable)")
    p.set_defaults(func=cmd_evaluate)




def settings_from_args(args):
    """The run's settings, every option checked (a checkpoint is read by the workers only, so it is checked
    here: a missing one is one line, not one error row per file)."""
    from audiosr_model.weights.load import resolve_device
    from audiosr_model.io.safe_open import check_input
    from audiosr_verify.checks.corpus import EvaluationSettings

    if args.config:
        raise AudioSRError("evaluate takes --preset, not --config: subjects are built from a preset")
    if args.checkpoint and args.random_weights:
        raise AudioSRError("give either --checkpoint or --random-weights, not both")
    if not args.checkpoint and not args.random_weights:
        raise AudioSRError("no weights: give --checkpoint PATH, or --random-weights for the bundled tiny default")
    if args.checkpoint:
        check_input(args.checkpoint, "checkpoint")
    if args.address and args.engine != "ray":
        raise AudioSRError("--address joins a Ray cluster: give it with --engine ray")
    mode = "against" if args.against else ("golden" if args.golden else "input")
    return EvaluationSettings(
        subject=args.subject, against=args.against, mode=mode,
        preset=args.preset or ("basic" if args.checkpoint else "tiny"),
        checkpoint=str(Path(args.checkpoint).resolve()) if args.checkpoint else None,
        weights_seed=args.weights_seed, steps=args.steps, guidance=args.guidance, seed=args.seed,
        input_rate=args.input_rate, threads=args.threads, device=str(resolve_device(args.device)),
        stages=not args.no_stages, options=parse_options(args.option))


class _RichProgress:
    """Files done of all, files per minute, the last file and its headline number."""

    def __init__(self, console, rank_by: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.rank_by = rank_by
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=console, transient=False)
        self.task = None
        self.done_here = 0
        self.failed = 0

    def start(self, total: int, completed: int) -> None:
        import time

        self.t0 = time.perf_counter()
        self.bar.start()
        self.task = self.bar.add_task("files", total=total, completed=completed, rate="")

    def advance(self, row: dict[str, Any]) -> None:
        import time

        self.done_here += 1
        self.failed += row.get("status") != "ok"
        per_min = 60 * self.done_here / max(time.perf_counter() - self.t0, 1e-9)
        rate = f"{per_min:.1f} files/min" + (f", {self.failed} failed" if self.failed else "")
        self.bar.update(self.task, advance=1, rate=rate, description=row["file"][-40:])

    def stop(self, failed: bool = False) -> None:
        if self.task is not None:
            if failed:  # the error is the run's one line; a bar drawn at its side would only blur it
                self.bar.live.transient = True
            self.bar.stop()


def cmd_evaluate(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from audiosr_verify.corpus.run import default_rank_metric, evaluate_corpus
    from audiosr_verify.report.corpus import write_html

    settings = settings_from_args(args)
    err = Console(stderr=True)
    rank_by = args.rank_by or default_rank_metric(settings)
    progress = _RichProgress(err, rank_by)
    try:
        run = evaluate_corpus(args.corpus, settings, args.output_dir, engine=args.engine, workers=args.workers,
                              address=args.address, worst=args.worst, rank_by=rank_by, progress=progress,
                              html=write_html)
    except BaseException:
        progress.stop(failed=True)
        raise
    progress.stop()
    s = run.summary
    c = s["counts"]
    console = Console() if sys.stdout.isatty() else Console(width=140)
    table = Table(title=f"{s['files']} files: {c['ok']} evaluated, {c['unreadable']} unreadable, {c['error']} failed")
    for col in ("metric", "median", "p95", "max"):
        table.add_column(col)
    from audiosr_verify.checks.corpus import SUMMARY_METRICS

    for name, label, _ in SUMMARY_METRICS:
        d = s["metrics"][name]
        if d.get("count") and "median" in d:
            table.add_row(label, f"{d['median']:.4g}", f"{d['p95']:.4g}", f"{d['max']:.4g}")
    console.print(table)
    failed = {k: v["failed"] for k, v in s["stages"].items() if v["failed"]}
    if failed:
        console.print("stage errors beyond tolerance: " + ", ".join(f"{k} ({v} files)" for k, v in failed.items()),
                      highlight=False, markup=False)
    for e in s["unreadable"] + s["errors"]:
        print(f"audiosr-verify: {e['error']}", file=sys.stderr)
    console.print(f"{run.files} files: {run.evaluated} evaluated now, {run.skipped} already done; "
                  f"{run.files_per_minute:.2f} files/min; wrote {', '.join(str(p) for p in run.written)}",
                  highlight=False, markup=False)
    return EXIT_OK if run.ok else EXIT_FAILED
