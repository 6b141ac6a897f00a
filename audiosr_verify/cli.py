"""`audiosr-verify`: enhance audio, make checkpoints, and verify implementations.

Every verb is a small function taking parsed arguments; problems a user can
fix are `AudioSRError`s, printed as one line without a traceback, exit 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from model.errors import AudioSRError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--checkpoint", metavar="PATH", help="AudioSR checkpoint (.bin/.ckpt/.pt or .safetensors)")
    g.add_argument("--preset", default=None, choices=["basic", "tiny"],
                   help="layout of the network (default: basic with --checkpoint, tiny with --random-weights)")
    g.add_argument("--config", metavar="YAML", help="custom model configuration (overrides --preset)")
    g.add_argument("--random-weights", action="store_true",
                   help="use deterministic random weights instead of a checkpoint (the bundled default)")
    g.add_argument("--weights-seed", type=int, default=0, help="seed of the random weights (default 0)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="compute device")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audiosr-verify",
        description="AudioSR super-resolution to 48 kHz, and the harness that verifies it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("enhance", help="super-resolve audio files to 48 kHz",
                       description="Enhance each INPUT to DIR/<stem>.wav (48 kHz mono float WAV). "
                       "Without --checkpoint, give --random-weights to run the bundled tiny default.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files (any rate soundfile reads)")
    p.add_argument("--output-dir", "-o", required=True, metavar="DIR", help="where to write the results")
    _add_model_options(p)
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

    from audiosr_verify import cli_verify

    cli_verify.add_verbs(sub)
    return parser


def load_network(args):
    """The network the model options ask for, with a one-line description."""
    from model import config as cfg
    from model.load import load_model, random_model, resolve_device

    device = resolve_device(args.device)
    if args.config:
        config = cfg.load_yaml(args.config)
    else:
        config = cfg.preset(args.preset or ("basic" if args.checkpoint else "tiny"))
    if args.checkpoint and args.random_weights:
        raise AudioSRError("give either --checkpoint or --random-weights, not both")
    if args.checkpoint:
        net, report = load_model(args.checkpoint, config, device)
        c = report.counts
        return net, f"{args.checkpoint} ({config.name}: {c['matched']} keys loaded, {c['ignored']} ignored)"
    if not args.random_weights:
        raise AudioSRError("no weights: give --checkpoint PATH, or --random-weights for the bundled tiny default")
    net = random_model(config, args.weights_seed, device)
    return net, f"random weights ({config.name}, seed {args.weights_seed})"


def _fix_malloc_threshold() -> None:
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

    from model.audio_stream import check_audio_file
    from model.long_audio import enhance_file

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
    _fix_malloc_threshold()
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
    from model import config as cfg
    from model.checkpoint import save_checkpoint
    from model.load import random_state

    state = random_state(cfg.preset(args.preset), args.seed)
    save_checkpoint(state, args.output, args.format)
    n = sum(v.numel() for v in state.values())
    print(f"wrote {args.output}: {len(state)} keys, {n:,} elements ({args.preset}, seed {args.seed})")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AudioSRError as exc:
        print(f"audiosr-verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("audiosr-verify: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
