"""`audiosr-verify enhance` and `audiosr-verify make-checkpoint`."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from audiosr_model.errors import AudioSRError
from audiosr_verify.cli.common import EXIT_FAILED, EXIT_OK, add_model_options, load_network


def add_verbs(sub) -> None:
    """Register `enhance` and `make-checkpoint` on an argparse sub-parsers object."""
    p = sub.add_parser("enhance", help="super-resolve audio files to 48 kHz",
                       description="Enhance each INPUT to DIR/<stem>.wav (48 kHz mono float WAV). "
                       "Without --checkpoint, give --random-weights to run the bundled tiny default.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files (any rate soundfile reads)")
    p.add_argument("--output-dir", "-o", required=True, metavar="DIR", help="where to write the results")
    add_model_options(p)
    p.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50; the original uses 200)")
    p.add_argument("--guidance", type=float, default=3.5, help="classifier-free guidance scale (default 3.5)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42, as the original)")
    p.add_argument("--level", default="preserve", choices=["preserve", "faithful"],
                   help="output level: keep the input's RMS (preserve, default) or peak 0.5 like the original")
    p.add_argument("--mix", default="mean", choices=["mean", "first"],
                   help="multi-channel input: average channels (default) or take the first like the original")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=cmd_enhance)

    p = sub.add_parser("make-checkpoint", help="write deterministic random weights as a checkpoint",
                       description="Write a checkpoint with seeded random weights for a preset, in the "
                       "original format ({'state_dict': ...} torch zip) or as safetensors.")
    p.add_argument("--preset", default="tiny", choices=["basic", "tiny"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", "-o", required=True, metavar="FILE")
    p.add_argument("--format", choices=["bin", "safetensors"], default=None,
                   help="file format (default: from the extension; .safetensors -> safetensors, else bin)")
    p.set_defaults(func=cmd_make_checkpoint)


def fix_malloc_threshold() -> None:
    """Pin glibc's mmap threshold at 1 MiB for long runs.

    glibc raises the threshold as large blocks are freed, so chunk-sized
    buffers end up in a fragmenting heap and peak RSS creeps up with the
    number of chunks (benchmarks/bench_long_audio.py: +25 % from 2 to 46
    chunks; +2 % with the threshold fixed). No-op where mallopt is absent.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def cmd_enhance(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from audiosr_model.audio_stream import check_audio_file
    from audiosr_model.long_audio import enhance_file

    console = Console(stderr=True)
    out_dir = Path(args.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise AudioSRError("output path exists and is not a directory", out_dir)
    if args.steps < 1:
        raise AudioSRError(f"--steps must be at least 1, got {args.steps}")
    # Every input is checked in full (header, length, NaN/Inf, truncation) before
    # the model is loaded or anything is created: a bad file costs one line.
    for item in args.inputs:
        check_audio_file(item)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise AudioSRError(f"cannot write to the output directory ({exc.strerror or exc})", out_dir) from None
    targets = []
    for item in args.inputs:
        target = out_dir / (Path(item).stem + ".wav")
        if target.resolve() == Path(item).resolve():
            raise AudioSRError("output would overwrite the input; choose another --output-dir", item)
        if target.exists() and not args.overwrite:
            raise AudioSRError("output exists (use --overwrite to replace it)", target)
        targets.append(target)
    fix_malloc_threshold()
    with console.status("loading model"):
        net, described = load_network(args)
    console.print(f"model: {described}")
    table = Table(title="enhanced")
    for col in ("input", "rate", "ch", "seconds", "cutoff Hz", "filter", "level", "output", "time s"):
        table.add_column(col)
    failures = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        files = progress.add_task("files", total=len(targets))
        steps = progress.add_task("sampler", total=1)
        for item, target in zip(args.inputs, targets):
            progress.update(steps, description=f"{Path(item).name}", completed=0)

            def report(what, done, total):
                if what == "step":
                    progress.update(steps, completed=done, total=total)

            t0 = time.perf_counter()
            try:
                r = enhance_file(net, item, target, steps=args.steps, guidance_scale=args.guidance,
                                 seed=args.seed, level_mode=args.level, mix=args.mix, progress=report)
            except AudioSRError as exc:
                failures += 1
                print(f"audiosr-verify: error: {exc}", file=sys.stderr)  # one line: rich would wrap it
                progress.advance(files)
                continue
            cut = ", ".join(f"{c:.0f}" for c in r.cutoff_hz) or "-"
            lvl = "silent" if r.silent_chunks == r.chunks else args.level
            table.add_row(Path(item).name, str(r.input_rate), str(r.channels), f"{r.duration:.2f}", cut,
                          ",".join(sorted(set(r.filter_types))) or "-", lvl, str(target),
                          f"{time.perf_counter() - t0:.1f}")
            progress.advance(files)
    console.print(table)
    return EXIT_FAILED if failures else EXIT_OK


def cmd_make_checkpoint(args) -> int:
    from audiosr_model import config as cfg
    from audiosr_model.checkpoint import save_checkpoint
    from audiosr_model.load import random_state

    state = random_state(cfg.preset(args.preset), args.seed)
    save_checkpoint(state, args.output, args.format)
    n = sum(v.numel() for v in state.values())
    print(f"wrote {args.output}: {len(state)} keys, {n:,} elements ({args.preset}, seed {args.seed})")
    return EXIT_OK
